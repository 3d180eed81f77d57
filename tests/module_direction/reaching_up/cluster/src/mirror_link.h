#pragma once
#include "cli.h"  // cluster reaching up into tools/
