/* cpu_pool.h - a persistent worker pool for the CPU backend, owned by a context. */
#ifndef CLSOFTMAX_CPU_POOL_H
#define CLSOFTMAX_CPU_POOL_H

typedef struct clsoftmax__cpu_pool clsoftmax__cpu_pool;

/* Runs on `count` threads at once: index 0 is the caller, 1.. the workers. */
typedef void (*clsoftmax__cpu_task)(void* arg, unsigned index, unsigned count);

/*
 * A pool with no workers yet (they start on first demand). NULL when memory or
 * a mutex cannot be had: callers then run everything on the calling thread.
 */
clsoftmax__cpu_pool* clsoftmax__cpu_pool_create(void);

/* Stops and joins the workers; NULL is a no-op. No run may be in progress. */
void clsoftmax__cpu_pool_free(clsoftmax__cpu_pool* pool);

/*
 * Calls task(arg, i, count) for i in [0, count) on count threads and returns
 * when all have returned; count <= threads. Starts workers up to threads - 1
 * the first time they are wanted (never per call). Runs task(arg, 0, 1) on the
 * calling thread alone when pool is NULL, threads <= 1, no worker could be
 * started, or another thread is running the pool (so concurrent callers never
 * wait for each other). Tasks must give the same results for any count.
 */
void clsoftmax__cpu_pool_run(clsoftmax__cpu_pool* pool, unsigned threads, clsoftmax__cpu_task task,
                             void* arg);

/* Workers started so far (for tests). */
unsigned clsoftmax__cpu_pool_workers(clsoftmax__cpu_pool* pool);

#endif /* CLSOFTMAX_CPU_POOL_H */
