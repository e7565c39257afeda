// Placeholder: replaced by the TOML loader.
#include "spattn/experiments/experiment.hpp"
