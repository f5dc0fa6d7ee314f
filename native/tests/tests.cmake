# ctest registrations (included from native/CMakeLists.txt)
set(LF_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/tests)

add_executable(test_golden tests/test_golden.cpp)
target_link_libraries(test_golden PRIVATE lfcore)
file(GLOB LF_GOLDEN_DIRS LIST_DIRECTORIES true ${LF_TESTS}/golden/v1/*)
foreach(dir ${LF_GOLDEN_DIRS})
  if(IS_DIRECTORY ${dir})
    get_filename_component(cfg ${dir} NAME)
    add_test(NAME golden_${cfg} COMMAND test_golden ${dir})
    set_tests_properties(golden_${cfg} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")
  endif()
endforeach()

add_executable(test_ops tests/test_ops.cpp)
target_link_libraries(test_ops PRIVATE lfcore)
add_test(NAME ops COMMAND test_ops test)

# ---------------------------------------------------------------- bad input: one test per case
set(LF_BAD ${CMAKE_BINARY_DIR}/bad)
add_test(NAME bad_inputs_setup COMMAND ${CMAKE_COMMAND} -E env sh -c
  "rm -rf '${LF_BAD}' && '$<TARGET_FILE:lf-devtool>' bad-inputs --out '${LF_BAD}'")
set_tests_properties(bad_inputs_setup PROPERTIES FIXTURES_SETUP bad_inputs)
set(LF_CORE $<TARGET_FILE:loraforge-core>)
function(lf_expect name code regex)
  add_test(NAME ${name} COMMAND sh ${LF_TESTS}/expect_error.sh ${code} ${regex} ${ARGN})
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED bad_inputs)
endfunction()
function(lf_bad_model case regex)
  lf_expect(bad_model_${case} 3 ${regex} ${LF_CORE} logits --model ${LF_BAD}/${case} --tokens 1,2,3)
endfunction()
lf_bad_model(truncated "bad/truncated/model.safetensors: tensor '[^']+': field 'data_offsets': header offsets lie or file truncated")
lf_bad_model(header_len "bad/header_len/model.safetensors: truncated or corrupt: header length [0-9]+ exceeds")
lf_bad_model(tiny "bad/tiny/model.safetensors: truncated: the file has 2 bytes")
lf_bad_model(bad_header_json "bad/bad_header_json/model.safetensors: corrupt header JSON: line 1, column 12")
lf_bad_model(offsets_lie "tensor 'model.norm.weight': field 'data_offsets': header offsets lie: data_offsets span 64 bytes but shape \\[32\\] of F32 needs 128")
lf_bad_model(offsets_past_end "tensor 'model.norm.weight': field 'data_offsets': header offsets lie or file truncated: data_offsets end 192 is past the 128 data bytes")
lf_bad_model(offsets_overlap "offsets_overlap/model.safetensors: tensor 'model.norm.weight': field 'data_offsets': data_offsets \\[64, 192\\] overlap those of tensor 'model.layers.0.input_layernorm.weight' \\[0, 128\\]: two tensors would share bytes")
lf_bad_model(offsets_alias "offsets_alias/model.safetensors: tensor 'model.norm.weight': field 'data_offsets': data_offsets \\[0, 128\\] overlap those of tensor 'model.layers.0.input_layernorm.weight' \\[0, 128\\]")
lf_bad_model(offsets_gap "offsets_gap/model.safetensors: tensor 'model.norm.weight': field 'data_offsets': data_offsets \\[192, 320\\] leave bytes \\[128, 192\\) of the data unclaimed after tensor 'model.layers.0.input_layernorm.weight' \\[0, 128\\]")
lf_bad_model(offsets_leading_gap "offsets_leading_gap/model.safetensors: tensor 'model.norm.weight': field 'data_offsets': data_offsets \\[8, 136\\] leave bytes \\[0, 8\\) of the data unclaimed before it")
lf_bad_model(offsets_trailing "offsets_trailing/model.safetensors: the tensors cover 256 of the 260 data bytes: the last 4 bytes after tensor 'model.norm.weight' \\[128, 256\\] belong to no tensor")
lf_bad_model(bad_dtype "bad_dtype/model.safetensors: tensor 'model.norm.weight': field 'dtype': unsupported dtype I32")
lf_bad_model(bad_shape "tensor 'model.layers.0.self_attn.k_proj.weight': field 'shape': shape \\[8, 64\\] does not match config.json \\(expected \\[16, 32\\]\\)")
lf_bad_model(missing_tensor "bad/missing_tensor/model.safetensors: tensor 'model.layers.0.mlp.up_proj.weight': missing tensor")
lf_bad_model(bad_config_json "bad/bad_config_json/config.json: bad JSON: line 1, column 20")
lf_bad_model(bad_config_field "config.json: field 'num_attention_heads': expected a positive integer, got \"four\"")
lf_bad_model(bad_rope "config.json: field 'rope_scaling.rope_type': unsupported rope_type 'yarn'")
lf_bad_model(config_heads_wrap "config_heads_wrap/config.json: field 'num_attention_heads': 536870916 is larger than the supported maximum 16384")
lf_bad_model(config_q_width "config_q_width/config.json: field 'num_attention_heads': num_attention_heads x head_dim = 1024 x 1024 = 1048576 is larger than the supported maximum 262144")
lf_bad_model(config_huge_vocab "config_huge_vocab/config.json: field 'vocab_size': 1073741824 is larger than the supported maximum 16777216")
lf_bad_model(bad_index "model-00001-of-00001.safetensors: tensor 'model.layers.0.self_attn.z_proj.weight': listed in model.safetensors.index.json but missing")
lf_bad_model(no_such_dir "bad/no_such_dir: model directory does not exist")
function(lf_bad_shard case regex)
  lf_expect(bad_shard_${case} 3 ${regex} ${LF_CORE} train --config ${LF_BAD}/run-${case}.json)
endfunction()
lf_bad_shard(bad_magic "bad_magic.lfs: field 'magic': bad magic")
lf_bad_shard(bad_crc "bad_crc.lfs: field 'crc32': CRC mismatch: stored [0-9a-f]+, computed [0-9a-f]+")
lf_bad_shard(truncated "truncated.lfs: field 'n_tokens': size mismatch: .* \\(truncated\\?\\)")
lf_bad_shard(bad_offsets "bad_offsets.lfs: field 'offsets': record 0: offsets out of range")
lf_bad_shard(bad_token "bad_token.lfs: field 'tokens': record 1, token 3: id 69 >= vocab_size 64")
lf_bad_shard(bad_vocab "bad_vocab.lfs: field 'vocab_size': shard vocab_size 164 is larger than the model's vocab_size 64")
lf_expect(bad_run_unknown_key 2 "run-unknown_key.json: field 'intervals.eval_step': unknown key" ${LF_CORE} train --config ${LF_BAD}/run-unknown_key.json)
lf_expect(bad_run_type 2 "run-bad_type.json: field 'check_numerics': expected true or false" ${LF_CORE} train --config ${LF_BAD}/run-bad_type.json)
lf_expect(bad_run_json 2 "run-bad_json.json: bad JSON: line 1, column 29: unexpected character" ${LF_CORE} train --config ${LF_BAD}/run-bad_json.json)
lf_expect(bad_run_empty_model_dir 2 "run-empty_model_dir.json: field 'model_dir': must not be empty" ${LF_CORE} train --config ${LF_BAD}/run-empty_model_dir.json)
lf_expect(bad_run_empty_shard 2 "run-empty_shard.json: field 'train_shards': a shard path must not be empty" ${LF_CORE} train --config ${LF_BAD}/run-empty_shard.json)
lf_expect(bad_run_missing 2 "no-such-run.json: cannot open" ${LF_CORE} train --config ${LF_BAD}/no-such-run.json)
lf_expect(bad_logits_token 2 "field 'tokens': token 1: id 999 >= vocab_size 64" ${LF_CORE} logits --model ${LF_BAD}/good --tokens 1,999)
lf_expect(bad_verb 2 "unknown verb 'trian'" ${LF_CORE} trian)

# ---------------------------------------------------------------- numerics
lf_expect(numerics_check_names_tensor 4 "\"tensor\":\"model.layers.1.mlp.up_proj\",\"layer\":\"1\""
  ${LF_CORE} train --config ${LF_BAD}/run-nan.json --check-numerics --no-resume)
lf_expect(numerics_check_names_tensor_replicas 4 "\"tensor\":\"model.layers.1.mlp.up_proj\",\"layer\":\"1\""
  ${LF_CORE} train --config ${LF_BAD}/run-nan_replicas.json --check-numerics --no-resume)
add_test(NAME numerics_nan_loss_no_adapter COMMAND sh -c
  "sh '${LF_TESTS}/expect_error.sh' 4 'loss is NaN at step 1; no adapter written' '${LF_CORE}' train --config '${LF_BAD}/run-nan.json' --no-resume && test ! -e '${LF_BAD}/out-nan/final' && test ! -e '${LF_BAD}/out-nan/final.tmp' && echo 'no adapter written'")
set_tests_properties(numerics_nan_loss_no_adapter PROPERTIES FIXTURES_REQUIRED bad_inputs)

# ---------------------------------------------------------------- determinism, kill + resume
add_test(NAME determinism_resume COMMAND bash ${LF_TESTS}/determinism.sh ${CMAKE_BINARY_DIR})
set_tests_properties(determinism_resume PROPERTIES TIMEOUT 300)

# ---------------------------------------------------------------- whole model: gradcheck, merge
add_executable(test_model tests/test_model.cpp)
target_link_libraries(test_model PRIVATE lfcore)
foreach(dtype F32 BF16 F16)
  add_test(NAME model_setup_${dtype} COMMAND lf-devtool random-model --out ${CMAKE_BINARY_DIR}/tiny-model-${dtype}
    --dim 32 --hidden 48 --layers 2 --heads 4 --kv-heads 2 --vocab 64 --dtype ${dtype})
  set_tests_properties(model_setup_${dtype} PROPERTIES FIXTURES_SETUP tiny_model_${dtype})
endforeach()
# merged weights keep the model's dtype: exact for F32, to BF16/F16 rounding otherwise
add_test(NAME model_gradcheck_merge_f32 COMMAND test_model ${CMAKE_BINARY_DIR}/tiny-model-F32 ${CMAKE_BINARY_DIR}/tiny-work-f32 1e-5)
add_test(NAME model_gradcheck_merge_bf16 COMMAND test_model ${CMAKE_BINARY_DIR}/tiny-model-BF16 ${CMAKE_BINARY_DIR}/tiny-work-bf16 2e-2)
add_test(NAME model_gradcheck_merge_f16 COMMAND test_model ${CMAKE_BINARY_DIR}/tiny-model-F16 ${CMAKE_BINARY_DIR}/tiny-work-f16 4e-3)
set_tests_properties(model_gradcheck_merge_f32 PROPERTIES FIXTURES_REQUIRED tiny_model_F32 ENVIRONMENT "OMP_NUM_THREADS=1")
set_tests_properties(model_gradcheck_merge_bf16 PROPERTIES FIXTURES_REQUIRED tiny_model_BF16 ENVIRONMENT "OMP_NUM_THREADS=1")
set_tests_properties(model_gradcheck_merge_f16 PROPERTIES FIXTURES_REQUIRED tiny_model_F16 ENVIRONMENT "OMP_NUM_THREADS=1")

# ---------------------------------------------------------------- parsers under hostile input
# replay of the seed corpus (bad-inputs files and their prefixes) with any compiler
# (every target gets every file: a config.json parser fed a .safetensors must refuse it cleanly too)
foreach(t safetensors shard config run)
  add_executable(replay_${t} fuzz/fuzz_${t}.cpp fuzz/replay_main.cpp)
  target_link_libraries(replay_${t} PRIVATE lfcore)
  add_test(NAME fuzz_replay_${t} COMMAND replay_${t} ${LF_BAD} ${LF_BAD}/good ${LF_BAD}/truncated ${LF_BAD}/offsets_lie
           ${LF_BAD}/bad_config_field ${LF_BAD}/bad_rope ${LF_BAD}/config_heads_wrap ${LF_BAD}/config_q_width)
  set_tests_properties(fuzz_replay_${t} PROPERTIES FIXTURES_REQUIRED bad_inputs)
endforeach()
# libFuzzer runs (clang + compiler-rt), 10 s per target; skipped from the suite when clang is missing
find_program(LF_CLANGXX NAMES clang++-14 clang++)
if(LF_CLANGXX)
  add_test(NAME fuzz_libfuzzer COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzzers.sh ${LF_BAD} 10)
  set_tests_properties(fuzz_libfuzzer PROPERTIES FIXTURES_REQUIRED bad_inputs TIMEOUT 300
    ENVIRONMENT "FUZZ_WORK=${CMAKE_BINARY_DIR}/fuzz-work")
else()
  message(WARNING "clang++ not found: the libFuzzer test (fuzz_libfuzzer) is not registered")
endif()

# ---------------------------------------------------------------- the real model: llama2.c -> HF, greedy tokens
add_test(NAME stories260k_greedy COMMAND bash ${LF_TESTS}/stories_greedy.sh ${CMAKE_BINARY_DIR}
  ${CMAKE_CURRENT_SOURCE_DIR}/golden/assets/stories260K)

# ---------------------------------------------------------------- generate / score (tests/golden/gen-v1)
add_executable(test_generate tests/test_generate.cpp)
target_link_libraries(test_generate PRIVATE lfcore)
file(GLOB LF_GEN_GOLDEN_DIRS LIST_DIRECTORIES true ${LF_TESTS}/golden/gen-v1/*)
foreach(dir ${LF_GEN_GOLDEN_DIRS})
  if(IS_DIRECTORY ${dir})
    get_filename_component(cfg ${dir} NAME)
    add_test(NAME generate_${cfg} COMMAND test_generate ${dir})
    set_tests_properties(generate_${cfg} PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2")
  endif()
endforeach()
# bad input: exit 3 naming the file and the line; bad options: exit 2 naming the option
set(LF_GEN_IN ${LF_TESTS}/gen_inputs)
set(LF_STORIES ${LF_TESTS}/golden/v1/stories260k/model)
function(lf_gen_expect name code regex)
  add_test(NAME ${name} COMMAND sh ${LF_TESTS}/expect_error.sh ${code} ${regex} ${ARGN})
endfunction()
function(lf_bad_prompts case regex)
  lf_gen_expect(generate_bad_${case} 3 ${regex} ${LF_CORE} generate --model ${ARGN} --prompts ${LF_GEN_IN}/${case}.jsonl)
endfunction()
lf_bad_prompts(bad_token "gen_inputs/bad_token.jsonl: line 2: field 'tokens': token 2: id 512 >= vocab_size 512" ${LF_STORIES})
lf_bad_prompts(empty_prompt "gen_inputs/empty_prompt.jsonl: line 3: field 'tokens': empty: at least one token is needed" ${LF_STORIES})
lf_bad_prompts(malformed "gen_inputs/malformed.jsonl: line 2: bad JSON: column 27: expected ',' or ']'" ${LF_STORIES})
lf_bad_prompts(duplicate_id "gen_inputs/duplicate_id.jsonl: line 2: field 'id': 'a' already used on line 1" ${LF_STORIES})
lf_bad_prompts(unknown_key "gen_inputs/unknown_key.jsonl: line 1: unknown key 'prompt'" ${LF_STORIES})
lf_bad_prompts(too_long "gen_inputs/too_long.jsonl: line 2: field 'tokens': the prompt has 64 tokens, which leaves no room to generate in the context of 64"
  ${LF_TESTS}/golden/v1/gqa_bf16_sharded/model)
lf_gen_expect(score_bad_empty_target 3 "gen_inputs/score_empty_target.jsonl: line 1: field 'target': empty"
  ${LF_CORE} score --model ${LF_STORIES} --examples ${LF_GEN_IN}/score_empty_target.jsonl)
lf_gen_expect(score_bad_too_long 3 "gen_inputs/score_too_long.jsonl: line 2: prompt \\+ target are 65 tokens, longer than the context of 64"
  ${LF_CORE} score --model ${LF_TESTS}/golden/v1/gqa_bf16_sharded/model --examples ${LF_GEN_IN}/score_too_long.jsonl)
lf_gen_expect(generate_bad_variant_without_adapter 2 "field 'variants': --variants adapter needs --adapter DIR"
  ${LF_CORE} generate --model ${LF_STORIES} --prompts ${LF_GEN_IN}/prompts.jsonl --variants base,adapter)
lf_gen_expect(generate_bad_top_p 2 "field 'top-p': --top-p must be a number in \\(0, 1\\], got '0'"
  ${LF_CORE} generate --model ${LF_STORIES} --prompts ${LF_GEN_IN}/prompts.jsonl --top-p 0)
lf_gen_expect(generate_bad_stop_token 2 "field 'stop-tokens': --stop-tokens: id 600 >= vocab_size 512"
  ${LF_CORE} generate --model ${LF_STORIES} --prompts ${LF_GEN_IN}/prompts.jsonl --stop-tokens 2,600)
# seeded sampling through the verb: the same tokens at any batch size and thread count
add_test(NAME generate_sampling_reproducible COMMAND bash ${LF_TESTS}/generate_sampling.sh ${LF_CORE} ${LF_STORIES}
  ${LF_TESTS}/golden/gen-v1/stories260k/adapter ${LF_GEN_IN}/prompts.jsonl)

# fp16 dynamic loss scaling policy (src/cuda/loss_scaler.h; backend-generic, checked on the CPU)
add_executable(test_loss_scaler tests/test_loss_scaler.cpp)
target_link_libraries(test_loss_scaler PRIVATE lfcore)
add_test(NAME loss_scaler COMMAND test_loss_scaler)

# `loraforge-core backends`: the CPU backend always compiled and usable; cuda listed either way
# (compiled in or not), so the cli's backend choice (cli/src/train/backendChoice.ts) can say why
add_test(NAME backends_verb COMMAND sh -c
  "'$<TARGET_FILE:loraforge-core>' backends | grep -q '\"name\":\"cpu\",\"compiled\":true,\"device\":true' && '$<TARGET_FILE:loraforge-core>' backends | grep -q '\"name\":\"cuda\",\"compiled\":'")
