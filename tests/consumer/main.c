/* main.c - a program outside the project that uses the installed clsoftmax (consumer test). */
#include <clsoftmax.h>

#include <math.h>
#include <stdio.h>

int main(void)
{
    clsoftmax_config config;
    clsoftmax_config_init(&config);
    config.backend = CLSOFTMAX_BACKEND_CPU;
    /* The test must not depend on the environment of whoever runs it. */
    config.use_environment = 0;

    clsoftmax_context* ctx = NULL;
    clsoftmax_status st = clsoftmax_context_create(&config, &ctx);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "context: %s: %s\n", clsoftmax_status_name(st),
                clsoftmax_last_create_error());
        return 1;
    }

    const size_t dims[2] = {2, 3};
    const float in[6] = {1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f};
    float out[6] = {0};
    clsoftmax_desc desc;
    clsoftmax_desc_init(&desc, CLSOFTMAX_FLOAT32, 2, dims, -1);
    st = clsoftmax_softmax_host(ctx, &desc, in, out);
    if (st != CLSOFTMAX_SUCCESS) {
        fprintf(stderr, "softmax: %s: %s\n", clsoftmax_status_name(st),
                clsoftmax_context_last_error(ctx));
        clsoftmax_context_free(ctx);
        return 1;
    }
    clsoftmax_context_free(ctx);

    /* softmax([1, 2, 3])[2] = 1 / (1 + e^-1 + e^-2) */
    const double want = 1.0 / (1.0 + exp(-1.0) + exp(-2.0));
    if (fabs(out[2] - want) > 1e-6 || fabs(out[3] - 1.0 / 3.0) > 1e-6) {
        fprintf(stderr, "wrong result: %.9g (want %.9g), %.9g (want 1/3)\n", out[2], want, out[3]);
        return 1;
    }
    printf("clsoftmax %s consumer: ok (%.7f)\n", clsoftmax_version_string(), out[2]);
    return 0;
}
