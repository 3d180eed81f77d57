#pragma once
#include "cli.h"  // io reaching up into tools/
