// A header of bus's own: including it is fine.
#pragma once
