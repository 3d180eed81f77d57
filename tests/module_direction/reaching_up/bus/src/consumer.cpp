// A bus/ source that reaches up into io/: the direction check must name it.
#include "partition_log.h"
#include "record_frame.h"
