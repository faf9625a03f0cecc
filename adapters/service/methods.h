/* Every method any front door serves, in one list: its id, its name
 * ("package.Service/Method", the gRPC path without the leading '/') and
 * its kind. The request layer (service.h) runs its authorization and audit
 * hooks by id; the gRPC codec registers the paths; later front doors (HTTP,
 * MLLP) add their methods here so they go through the same hooks. */
#ifndef CL_ADAPTERS_SERVICE_METHODS_H
#define CL_ADAPTERS_SERVICE_METHODS_H

/* What a method does, for policies that decide by kind. */
enum cl_method_kind {
  CL_MK_WRITE,      /* appends events */
  CL_MK_READ,       /* returns patient data (event contents, stream names) */
  CL_MK_PROOF,      /* returns integrity data only: hashes, proofs, checkpoints */
  CL_MK_HEALTH,     /* liveness */
  CL_MK_ADMIN_READ, /* cluster and projection status */
  CL_MK_ADMIN,      /* changes the cluster or a projection */
  CL_MK_PEER,       /* node to node (catch-up) */
  CL_MK_AUTH,       /* logging in and out */
  CL_MK_AUDIT,      /* reads the audit trail */
  CL_MK_EMERGENCY,  /* declares break-glass */
  CL_MK_CDS         /* asks decision support about a patient (CDS Hooks, Cds.CheckOrder) and
                       reports back (CDS Hooks feedback) */
};

/* X(id, name, kind) */
#define CL_METHODS(X)                                                                              \
  X(M_APPEND, "clinlog.v1.Log/Append", CL_MK_WRITE)                                                \
  X(M_APPEND_STREAM, "clinlog.v1.Log/AppendStream", CL_MK_WRITE)                                   \
  X(M_READ, "clinlog.v1.Log/Read", CL_MK_READ)                                                     \
  X(M_SUBSCRIBE, "clinlog.v1.Log/Subscribe", CL_MK_READ)                                           \
  X(M_GET_CHECKPOINT, "clinlog.v1.Log/GetCheckpoint", CL_MK_PROOF)                                 \
  X(M_PROVE_INCLUSION, "clinlog.v1.Log/ProveInclusion", CL_MK_PROOF)                               \
  X(M_PROVE_CONSISTENCY, "clinlog.v1.Log/ProveConsistency", CL_MK_PROOF)                           \
  X(M_GET_EVENT, "clinlog.v1.Log/GetEvent", CL_MK_READ)                                            \
  X(M_HEALTH_CHECK, "grpc.health.v1.Health/Check", CL_MK_HEALTH)                                   \
  X(M_HEALTH_WATCH, "grpc.health.v1.Health/Watch", CL_MK_HEALTH)                                   \
  X(M_CLUSTER_STATUS, "clinlog.v1.Cluster/Status", CL_MK_ADMIN_READ)                               \
  X(M_ADD_NODE, "clinlog.v1.Cluster/AddNode", CL_MK_ADMIN)                                         \
  X(M_REMOVE_NODE, "clinlog.v1.Cluster/RemoveNode", CL_MK_ADMIN)                                   \
  X(M_TRANSFER_LEADERSHIP, "clinlog.v1.Cluster/TransferLeadership", CL_MK_ADMIN)                   \
  X(M_FETCH_RECORDS, "clinlog.v1.Cluster/FetchRecords", CL_MK_PEER)                                \
  X(M_ROTATE_LOG_KEY, "clinlog.v1.Cluster/RotateLogKey", CL_MK_ADMIN)                              \
  X(M_LOG_KEY_STATUS, "clinlog.v1.Cluster/LogKeyStatus", CL_MK_PEER)                               \
  X(M_GET_STREAM, "clinlog.v1.Streams/GetStream", CL_MK_READ)                                      \
  X(M_LIST_STREAMS, "clinlog.v1.Streams/ListStreams", CL_MK_READ)                                  \
  X(M_LIST_EVENTS_BY_TYPE, "clinlog.v1.Streams/ListEventsByType", CL_MK_PROOF)                     \
  X(M_LIST_PROJECTIONS, "clinlog.v1.Projections/List", CL_MK_ADMIN_READ)                           \
  X(M_REBUILD_PROJECTION, "clinlog.v1.Projections/Rebuild", CL_MK_ADMIN)                           \
  X(M_FHIR_READ, "clinlog.v1.Fhir/Read", CL_MK_READ)                                               \
  X(M_FHIR_HISTORY, "clinlog.v1.Fhir/History", CL_MK_READ)                                         \
  X(M_FHIR_SEARCH, "clinlog.v1.Fhir/Search", CL_MK_READ)                                           \
  X(M_FHIR_EVERYTHING, "clinlog.v1.Fhir/Everything", CL_MK_READ)                                   \
  X(M_FHIR_CAPABILITIES, "clinlog.v1.Fhir/Capabilities", CL_MK_HEALTH)                             \
  X(M_FHIR_EXPORT, "clinlog.v1.Fhir/Export", CL_MK_READ)                                           \
  X(M_FHIR_EXPORT_STATUS, "clinlog.v1.Fhir/ExportStatus", CL_MK_READ)                              \
  X(M_FHIR_EXPORT_CANCEL, "clinlog.v1.Fhir/ExportCancel", CL_MK_READ)                              \
  X(M_FHIR_EXPORT_READ, "clinlog.v1.Fhir/ExportRead", CL_MK_READ)                                  \
  X(M_AUTH_LOGIN, "clinlog.v1.Auth/Login", CL_MK_AUTH)                                             \
  X(M_AUTH_LOGOUT, "clinlog.v1.Auth/Logout", CL_MK_AUTH)                                           \
  X(M_AUTH_WHOAMI, "clinlog.v1.Auth/Whoami", CL_MK_AUTH)                                           \
  X(M_AUDIT_QUERY, "clinlog.v1.Audit/Query", CL_MK_AUDIT)                                          \
  X(M_AUTH_BREAK_GLASS, "clinlog.v1.Auth/BreakGlass", CL_MK_EMERGENCY)                             \
  X(M_AUTH_TOKEN, "clinlog.v1.Auth/Token", CL_MK_AUTH)                                             \
  X(M_CDS_DISCOVERY, "clinlog.v1.Cds/Discovery", CL_MK_HEALTH)                                     \
  X(M_CDS_HOOK, "clinlog.v1.Cds/Hook", CL_MK_CDS)                                                  \
  X(M_CDS_FEEDBACK, "clinlog.v1.Cds/Feedback", CL_MK_CDS)                                          \
  X(M_CDS_CHECK_ORDER, "clinlog.v1.Cds/CheckOrder", CL_MK_CDS)                                     \
  X(M_CDS_ALERTS, "clinlog.v1.Cds/Alerts", CL_MK_READ)                                             \
  X(M_CDS_ACKNOWLEDGE, "clinlog.v1.Cds/Acknowledge", CL_MK_WRITE)                                  \
  X(M_CDS_OVERRIDE, "clinlog.v1.Cds/Override", CL_MK_WRITE)                                        \
  X(M_MLLP_MESSAGE, "clinlog.v1.Mllp/Message", CL_MK_WRITE)                                        \
  X(M_DEVICE_SUBMIT, "clinlog.v1.Devices/SubmitReadings", CL_MK_WRITE)                             \
  X(M_FHIR_WRITE, "clinlog.v1.Fhir/Write", CL_MK_WRITE)

enum cl_method {
#define CL_METHOD_ENUM(id, name, kind) id,
  CL_METHODS(CL_METHOD_ENUM)
#undef CL_METHOD_ENUM
      M_COUNT
};

/* "clinlog.v1.Log/Append", ... (static strings; "?" for an unknown id). */
const char *cl_method_name(int m);
/* enum cl_method_kind of a method (-1 for an unknown id). */
int cl_method_kind(int m);
/* "write", "read", ... */
const char *cl_method_kind_name(int kind);
/* The id of a name, or -1. */
int cl_method_by_name(const char *name);

#endif
