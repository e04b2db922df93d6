// The functions are static inline in include/mask_bits.h; SwiftPM needs one source file.
#include "mask_bits.h"
