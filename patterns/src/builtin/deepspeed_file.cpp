// deepspeed(file=PATH): the pattern a DeepSpeed config file's sparse_attention section
// describes, i.e. the ds_* pattern io/deepspeed_config.hpp maps it to.
#include "leaf.hpp"
#include "spattn/patterns/delegate.hpp"
#include "spattn/patterns/io/deepspeed_config.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn {
namespace builtin {
namespace {

// Behaves exactly as the ds_* pattern the file maps to; prints as the file form.
class DeepSpeedFile final : public Delegate {
 public:
  explicit DeepSpeedFile(const std::string& file)
      : Delegate(fmt::format("deepspeed(file={})", to_string(ParamValue{file})),
                 parse_spec(deepspeed_config_spec_from_file(file))) {}
};

}  // namespace

void register_deepspeed(Registry& r) {
  r.add({"deepspeed",
         {string_param("file",
                       "DeepSpeed config JSON: a whole config with a \"sparse_attention\" "
                       "section, or the bare section")},
         "the ds_* pattern a DeepSpeed config file's sparse_attention section describes",
         "as the ds_* pattern of the section's mode (see 'spattn mask --from-deepspeed FILE' for "
         "the mapping)",
         "DeepSpeed deepspeed/runtime/config.py, get_sparse_attention (modes dense, fixed, "
         "variable, bigbird, bslongformer; keys it does not read are rejected)",
         "deepspeed(file=\"ds_config.json\")",
         [](const Args& a) { return std::make_shared<DeepSpeedFile>(a.get_string("file")); }});
}

}  // namespace builtin
}  // namespace spattn
