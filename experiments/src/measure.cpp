// Placeholder: replaced by the point measurement.
#include "spattn/experiments/measure.hpp"
