// OpenBLAS's own cblas.h (selected by the openblas pkg-config include path) declares
// openblas_set_num_threads / openblas_get_num_threads next to the CBLAS interface.
#include <cblas.h>
