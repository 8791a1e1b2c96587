/* cpu_pool.c - a persistent worker pool: workers wait on a condition variable between runs. */
#include "cpu_pool.h"

#include <pthread.h>
#include <stdlib.h>

#define POOL_MAX_WORKERS 255u

struct clsoftmax__cpu_pool {
    /* held by the one caller running the pool; others run alone (trylock) */
    pthread_mutex_t run_lock;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t start; /* generation moved or stop set */
    pthread_cond_t done;  /* pending reached 0 */
    unsigned long generation;
    clsoftmax__cpu_task task;
    void* arg;
    unsigned count;   /* threads taking part in this run, the caller included */
    unsigned pending; /* workers of this run still working */
    int stop;

    unsigned workers;
    pthread_t tid[POOL_MAX_WORKERS];
    struct worker_arg {
        clsoftmax__cpu_pool* pool;
        unsigned index;           /* 1-based: the caller is 0 */
        unsigned long generation; /* the last run it must not take part in */
    } warg[POOL_MAX_WORKERS];
};

static void* worker_main(void* p)
{
    const struct worker_arg* wa = p;
    clsoftmax__cpu_pool* pool = wa->pool;
    unsigned index = wa->index;
    /* From creation, not from pool->generation now: a run may have begun already. */
    unsigned long seen = wa->generation;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->start, &pool->lock);
        if (pool->stop)
            break;
        seen = pool->generation;
        if (index < pool->count) {
            clsoftmax__cpu_task task = pool->task;
            void* arg = pool->arg;
            unsigned count = pool->count;
            pthread_mutex_unlock(&pool->lock);
            task(arg, index, count);
            pthread_mutex_lock(&pool->lock);
            if (--pool->pending == 0)
                pthread_cond_signal(&pool->done);
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

clsoftmax__cpu_pool* clsoftmax__cpu_pool_create(void)
{
    clsoftmax__cpu_pool* pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return NULL;
    int made = 0;
    if (pthread_mutex_init(&pool->run_lock, NULL) != 0)
        goto fail;
    made = 1;
    if (pthread_mutex_init(&pool->lock, NULL) != 0)
        goto fail;
    made = 2;
    if (pthread_cond_init(&pool->start, NULL) != 0)
        goto fail;
    made = 3;
    if (pthread_cond_init(&pool->done, NULL) != 0)
        goto fail;
    return pool;
fail:
    if (made >= 3)
        pthread_cond_destroy(&pool->start);
    if (made >= 2)
        pthread_mutex_destroy(&pool->lock);
    if (made >= 1)
        pthread_mutex_destroy(&pool->run_lock);
    free(pool);
    return NULL;
}

void clsoftmax__cpu_pool_free(clsoftmax__cpu_pool* pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned w = 0; w < pool->workers; w++)
        pthread_join(pool->tid[w], NULL);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->start);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->run_lock);
    free(pool);
}

unsigned clsoftmax__cpu_pool_workers(clsoftmax__cpu_pool* pool)
{
    if (pool == NULL)
        return 0;
    pthread_mutex_lock(&pool->lock);
    unsigned w = pool->workers;
    pthread_mutex_unlock(&pool->lock);
    return w;
}

void clsoftmax__cpu_pool_run(clsoftmax__cpu_pool* pool, unsigned threads, clsoftmax__cpu_task task,
                             void* arg)
{
    if (pool == NULL || threads <= 1 || pthread_mutex_trylock(&pool->run_lock) != 0) {
        task(arg, 0, 1);
        return;
    }
    unsigned want = threads - 1 < POOL_MAX_WORKERS ? threads - 1 : POOL_MAX_WORKERS;
    /* Workers only ever get added, under run_lock, while none is running a task. */
    while (pool->workers < want) {
        unsigned w = pool->workers;
        pool->warg[w].pool = pool;
        pool->warg[w].index = w + 1;
        pool->warg[w].generation = pool->generation; /* stable: we hold run_lock */
        if (pthread_create(&pool->tid[w], NULL, worker_main, &pool->warg[w]) != 0)
            break;
        pthread_mutex_lock(&pool->lock);
        pool->workers = w + 1;
        pthread_mutex_unlock(&pool->lock);
    }
    unsigned count = (want < pool->workers ? want : pool->workers) + 1;
    if (count == 1) {
        pthread_mutex_unlock(&pool->run_lock);
        task(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->task = task;
    pool->arg = arg;
    pool->count = count;
    pool->pending = count - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->lock);

    task(arg, 0, count);

    pthread_mutex_lock(&pool->lock);
    while (pool->pending != 0)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&pool->run_lock);
}
