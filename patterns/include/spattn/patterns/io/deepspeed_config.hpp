#pragma once
// DeepSpeed configs as patterns: the `sparse_attention` section of a DeepSpeed config file
// (deepspeed/runtime/config.py, get_sparse_attention) mapped to the equivalent ds_* spec.
//
// Accepted input (JSON; comments allowed, duplicate keys refused as DeepSpeed does): an object with
// a "sparse_attention" object (a whole DeepSpeed config), or the bare section object. Keys are
// DeepSpeed's: "mode" ("fixed" by default, or "dense", "variable", "bigbird", "bslongformer") and
// the keys DeepSpeed's parser reads for that mode, with its defaults (for "bigbird" the config
// default of num_random_blocks is 0, not the class default 1). DeepSpeed silently ignores other
// keys; spattn rejects them with an error naming the key, since a key that has no effect in
// DeepSpeed is most likely a mistake.
#include <string>
#include <string_view>

namespace spattn {

// Maps the JSON text of a DeepSpeed config (named `source` in error messages) to the canonical
// ds_* spec string. Throws UsageError naming the source and key on malformed JSON, an unknown
// mode, unknown or misplaced keys, wrong value types and rejected parameter combinations.
std::string deepspeed_config_spec(std::string_view json_text, const std::string& source);

// Reads `path` (at most 16 MiB) and maps it as deepspeed_config_spec does. Throws UsageError if
// the file cannot be read.
std::string deepspeed_config_spec_from_file(const std::string& path);

}  // namespace spattn
