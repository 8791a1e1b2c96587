/* clblast_ops.c - the only file that includes clblast_c.h: GEMMs and CLBlast's status codes. */
#include "internal.h"

#include <clblast_c.h>

/* CLBlast's own codes (below -1000) by name; the rest reuse OpenCL's numbers. */
static const char* clblast_name(CLBlastStatusCode code)
{
    switch (code) {
    case CLBlastNotImplemented:
        return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA:
        return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB:
        return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC:
        return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension:
        return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA:
        return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB:
        return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC:
        return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA:
        return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB:
        return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC:
        return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp:
        return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount:
        return "CLBlastInvalidBatchCount";
    case CLBlastInvalidLocalMemUsage:
        return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoDoublePrecision:
        return "CLBlastNoDoublePrecision";
    case CLBlastDatabaseError:
        return "CLBlastDatabaseError";
    case CLBlastUnknownError:
        return "CLBlastUnknownError";
    case CLBlastUnexpectedError:
        return "CLBlastUnexpectedError";
    default:
        return (int)code > -1000 ? clsoftmax__cl_error_name((cl_int)code) : "CLBlast error";
    }
}

/* Ours for CLBlast's: its arguments were validated before, so what is left is the device's. */
static clsoftmax_status status_from_clblast(CLBlastStatusCode code)
{
    switch (code) {
    case CLBlastInsufficientMemoryA:
    case CLBlastInsufficientMemoryB:
    case CLBlastInsufficientMemoryC:
        return CLSOFTMAX_BUFFER_TOO_SMALL;
    case CLBlastInvalidDimension:
    case CLBlastInvalidLeadDimA:
    case CLBlastInvalidLeadDimB:
    case CLBlastInvalidLeadDimC:
    case CLBlastInvalidBatchCount:
        return CLSOFTMAX_INVALID_ARGUMENT;
    case CLBlastNoDoublePrecision:
    case CLBlastNotImplemented:
        return CLSOFTMAX_UNSUPPORTED;
    case CLBlastOpenCLBuildProgramFailure:
    case CLBlastOpenCLCompilerNotAvailable:
        return CLSOFTMAX_BUILD_FAILURE;
    default:
        return (int)code > -1000 ? clsoftmax__status_from_cl((cl_int)code) : CLSOFTMAX_OPENCL_ERROR;
    }
}

clsoftmax_status clsoftmax__gemm_enqueue(clsoftmax_context* ctx, const clsoftmax__gemm* g,
                                         cl_command_queue queue)
{
    const CLBlastTranspose tb = g->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode code;
    const char* call;
    if (g->dtype == CLSOFTMAX_FLOAT64) {
        call = "CLBlastDgemmStridedBatched";
        code = CLBlastDgemmStridedBatched(CLBlastLayoutRowMajor, CLBlastTransposeNo, tb, g->m, g->n,
                                          g->k, g->alpha, g->a, g->a_off, g->lda, g->a_stride, g->b,
                                          g->b_off, g->ldb, g->b_stride, g->beta, g->c, g->c_off,
                                          g->ldc, g->c_stride, g->batch, &queue, NULL);
    } else {
        call = "CLBlastSgemmStridedBatched";
        code = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, tb, g->m, g->n, g->k, (float)g->alpha, g->a,
            g->a_off, g->lda, g->a_stride, g->b, g->b_off, g->ldb, g->b_stride, (float)g->beta,
            g->c, g->c_off, g->ldc, g->c_stride, g->batch, &queue, NULL);
    }
    if (code == CLBlastSuccess)
        return CLSOFTMAX_SUCCESS;
    clsoftmax_status status =
        clsoftmax__error(ctx, status_from_clblast(code),
                         "%s failed with CLBlast status %s (%d): m %zu, n %zu, k %zu, batch %zu",
                         call, clblast_name(code), (int)code, g->m, g->n, g->k, g->batch);
    if ((int)code > -1000)
        ctx->last_cl_error = (cl_int)code;
    return status;
}
