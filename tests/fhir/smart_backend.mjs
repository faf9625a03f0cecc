// A SMART Backend Services client run against clinlog, as a standard
// backend does it: discovery from [base]/.well-known/smart-configuration,
// an access token from the token endpoint by client_credentials with a
// private_key_jwt client assertion (RFC 7523) built and signed by an
// independent OAuth client library (oauth4webapi, keys from jose), then
// FHIR reads with that token through an independent FHIR client
// (fhir-kit-client).
//
//   node smart_backend.mjs keys DIR
//       makes an ES384 and an RS384 key pair: DIR/jwks.json (the public JWK
//       Set to register), DIR/es384.json and DIR/rs384.json (private JWKs)
//   node smart_backend.mjs run BASE CLIENT_ID KEY.json SCOPE PATH...
//       discovery, a token for SCOPE, then GET each PATH (relative to BASE)
//   node smart_backend.mjs assert BASE CLIENT_ID KEY.json SCOPE CASE
//       posts one hand-made assertion (CASE: replay, expired, wrong-aud,
//       none-alg) straight to the token endpoint and prints the answers
// Prints one JSON object; exits 1 on a failed step.
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { Client } from 'fhir-kit-client';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const [mode, ...args] = process.argv.slice(2);

function fail(what, extra = {}) {
  console.log(JSON.stringify({ failed: what, ...extra }));
  process.exit(1);
}

async function discover(base) {
  const r = await fetch(`${base}/.well-known/smart-configuration`, { headers: { Accept: 'application/json' } });
  if (r.status !== 200) fail('discovery', { status: r.status });
  return r.json();
}

async function privateKey(file) {
  const jwk = JSON.parse(readFileSync(file, 'utf8'));
  return { key: await jose.importJWK(jwk, jwk.alg), kid: jwk.kid, alg: jwk.alg };
}

if (mode === 'keys') {
  const [dir] = args;
  mkdirSync(dir, { recursive: true });
  const keys = [];
  for (const alg of ['ES384', 'RS384']) {
    const { publicKey, privateKey: priv } = await jose.generateKeyPair(alg, { extractable: true });
    const kid = `${alg.toLowerCase()}-1`;
    keys.push({ ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' });
    writeFileSync(`${dir}/${alg.toLowerCase()}.json`, JSON.stringify({ ...(await jose.exportJWK(priv)), kid, alg }));
  }
  writeFileSync(`${dir}/jwks.json`, JSON.stringify({ keys }));
  console.log(JSON.stringify({ kids: keys.map((k) => k.kid) }));
} else if (mode === 'run') {
  const [base, clientId, keyFile, scope, ...paths] = args;
  const config = await discover(base);
  const as = { issuer: base, token_endpoint: config.token_endpoint };
  const client = { client_id: clientId };
  const { key, kid } = await privateKey(keyFile);
  // SMART: the assertion's aud is the token endpoint's URL
  const auth = oauth.PrivateKeyJwt({ key, kid }, {
    [oauth.modifyAssertion]: (_header, payload) => { payload.aud = config.token_endpoint; },
  });
  const opts = { [oauth.allowInsecureRequests]: true };
  const resp = await oauth.clientCredentialsGrantRequest(as, client, auth, { scope }, opts);
  let token;
  try {
    token = await oauth.processClientCredentialsResponse(as, client, resp);
  } catch (e) {
    fail('token', { error: e.error, description: e.error_description, status: e.status, message: e.message });
  }
  const fhir = new Client({ baseUrl: base, customHeaders: { Authorization: `Bearer ${token.access_token}` } });
  const reads = [];
  for (const p of paths) {
    try {
      const res = await fhir.request(p);
      reads.push({ path: p, status: 200, resourceType: res.resourceType, total: res.total });
    } catch (e) {
      reads.push({ path: p, status: e.response?.status, diagnostics: e.response?.data?.issue?.[0]?.diagnostics });
    }
  }
  console.log(JSON.stringify({ config, token_type: token.token_type, expires_in: token.expires_in,
                               scope: token.scope, access_token: token.access_token, reads }));
} else if (mode === 'assert') {
  const [base, clientId, keyFile, scope, kase] = args;
  const config = await discover(base);
  const { key, kid, alg } = await privateKey(keyFile);
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: clientId, sub: clientId, aud: config.token_endpoint, jti: crypto.randomUUID(), exp: now + 240 };
  if (kase === 'expired') claims.exp = now - 120;
  if (kase === 'wrong-aud') claims.aud = 'https://elsewhere.example/token';
  let jwt;
  if (kase === 'none-alg') {
    jwt = new jose.UnsecuredJWT(claims).encode();
  } else {
    jwt = await new jose.SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);
  }
  const post = async () => {
    const r = await fetch(config.token_endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'client_credentials', scope,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt,
      }),
    });
    return { status: r.status, cacheControl: r.headers.get('cache-control'), body: await r.json() };
  };
  const answers = [await post()];
  if (kase === 'replay') answers.push(await post());
  console.log(JSON.stringify({ answers }));
} else {
  fail(`unknown mode ${mode}`);
}
