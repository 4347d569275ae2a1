/* The OpenMP wait policy flashblock starts with (see docs/ARCHITECTURE.md,
 * "Threads"): spin for a bounded number of iterations (about 20–50 µs), then
 * sleep. Decode runs dozens of short parallel regions per token, so waking
 * sleeping threads for each would cost more than the work; unbounded
 * spinning collapses when other processes share the cores. */
#ifndef FB_CLI_THREAD_POLICY_H
#define FB_CLI_THREAD_POLICY_H
#define FB_DEFAULT_SPINCOUNT "20000"
#endif
