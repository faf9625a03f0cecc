"""Independent verifiers for what clinlogd proves, shared by the interop and
cluster suites through common.py (which re-exports them: common.verify_note
and the rest keep working): RFC 9162 Merkle tree hashes, inclusion and
consistency proofs, and C2SP signed-note checkpoints. Written from the RFCs,
not from clinlog's C, so a bug there is not copied here. Pure functions: no
server, no state."""
import base64
import hashlib
import re

import nacl.signing


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def mth(leaves):
    """RFC 9162 §2.1.1 Merkle Tree Hash over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf_index, tree_size, lh, path, root):
    """RFC 9162 §2.1.3.2."""
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, lh
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, path):
    """RFC 9162 §2.1.4.2."""
    path = list(path)
    if first > second:
        return False
    if first == second:
        return not path and first_hash == second_hash
    if first == 0:
        return not path
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def verify_note(note, pk, origin=None):
    """Checks a C2SP checkpoint note signed by Ed25519 key `pk` whose key name
    is the origin. Returns (origin, tree_size, root). Raises AssertionError."""
    assert note.endswith("\n"), "note does not end in a newline"
    text, sep, sigs = note.partition("\n\n")
    assert sep, "no blank line in note"
    lines = text.split("\n")
    assert len(lines) == 3, "checkpoint body has %d lines, want 3: %r" % (len(lines), text)
    o, size_s, root_b64 = lines
    if origin is not None:
        assert o == origin, "origin %r != %r" % (o, origin)
    assert re.fullmatch(r"0|[1-9][0-9]*", size_s), "bad tree size line %r" % size_s
    root = base64.b64decode(root_b64, validate=True)
    assert len(root) == 32 and base64.b64encode(root).decode() == root_b64
    signed = (text + "\n").encode()
    keyhash = hashlib.sha256(o.encode() + b"\n\x01" + pk).digest()[:4]
    vk = nacl.signing.VerifyKey(pk)
    ok = False
    for line in sigs.split("\n")[:-1]:
        m = re.fullmatch("\u2014 (\\S+) (\\S+)", line)
        assert m, "bad signature line %r" % line
        if m.group(1) != o:
            continue
        blob = base64.b64decode(m.group(2), validate=True)
        if blob[:4] != keyhash:
            continue
        assert len(blob) == 68, "signature blob of %d bytes" % len(blob)
        vk.verify(signed, blob[4:])  # raises BadSignatureError
        ok = True
        break
    assert ok, "no signature line by the log key (key hash %s)" % keyhash.hex()
    return o, int(size_s), root
