// merge: base model + LoRA adapter -> a model directory with W' = W + scaling * B A
#pragma once
#include <string>

namespace lf {
void merge_adapter(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir);
}
