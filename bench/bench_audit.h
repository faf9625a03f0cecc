/* clinlog-bench audit: the cost of the audit trail, clinlogd --audit on
 * against --audit off in the same run (bench_audit.c). */
#ifndef CL_BENCH_AUDIT_H
#define CL_BENCH_AUDIT_H

/* argv[0] is the program (clinlogd is looked for beside it), argv[1]
 * "audit". Returns the exit status. */
int bench_audit_main(int argc, char **argv);

#endif
