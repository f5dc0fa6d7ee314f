# The Python checks against the pinned Hugging Face stack, as ctest tests.
# Included from native/CMakeLists.txt after tests/tests.cmake: include(golden/ctest.cmake)
# They need a Python with native/golden/requirements.txt installed (.ci/run makes .venv).
set(LF_GOLDEN_PY ${CMAKE_CURRENT_LIST_DIR})
set(LORAFORGE_PYTHON "${CMAKE_CURRENT_LIST_DIR}/../../.venv/bin/python" CACHE FILEPATH
    "python with native/golden/requirements.txt installed (torch, transformers, peft)")
if(NOT EXISTS ${LORAFORGE_PYTHON})
  message(WARNING "LORAFORGE_PYTHON=${LORAFORGE_PYTHON} does not exist: the PEFT and golden checks "
                  "will fail. python3 -m venv .venv && .venv/bin/pip install -r native/golden/requirements.txt")
endif()
set(LF_PY_ENV "OMP_NUM_THREADS=2;PYTHONWARNINGS=ignore;PYTHONDONTWRITEBYTECODE=1")

# PEFT loads the core's adapter (trained on each golden config's records) and agrees on logits and merge
file(GLOB LF_PEFT_GOLDEN_DIRS LIST_DIRECTORIES true ${CMAKE_CURRENT_LIST_DIR}/../tests/golden/v1/*)
foreach(dir ${LF_PEFT_GOLDEN_DIRS})
  if(IS_DIRECTORY ${dir})
    get_filename_component(cfg ${dir} NAME)
    add_test(NAME peft_agrees_${cfg} COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/check_peft.py
             --core $<TARGET_FILE:loraforge-core> --train-golden ${dir})
    set_tests_properties(peft_agrees_${cfg} PROPERTIES TIMEOUT 300 ENVIRONMENT "${LF_PY_ENV}")
  endif()
endforeach()

# the checker refuses broken adapters and logits off by 1e-4
add_test(NAME check_peft_refuses_bad_adapters COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/test_check_peft.py
         --core $<TARGET_FILE:loraforge-core>)
# the committed goldens are what make_golden.py writes now
add_test(NAME goldens_not_stale COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/regen_check)
# ... whatever kernels the caller's environment asks torch for: make_golden.py pins them (dispatch.py),
# so a machine whose CPU or environment picks AVX-512 (or AVX2) kernels regenerates the same goldens
foreach(isa avx2 avx512)
  string(TOUPPER ${isa} ISA)
  add_test(NAME goldens_not_stale_forced_${isa} COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/regen_check)
  set_tests_properties(goldens_not_stale_forced_${isa} PROPERTIES TIMEOUT 300
    ENVIRONMENT "${LF_PY_ENV};ATEN_CPU_CAPABILITY=${isa};MKL_CBWR=AUTO;MKL_ENABLE_INSTRUCTIONS=${ISA};ONEDNN_MAX_CPU_ISA=ALL")
endforeach()
# and the pin is what makes it so: with the libraries choosing (as before the pin), the regeneration
# differs by more than the old 1e-6 bound
add_test(NAME goldens_unpinned_differ COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/regen_check --tol 1e-6)
set_tests_properties(goldens_unpinned_differ PROPERTIES TIMEOUT 300
  ENVIRONMENT "${LF_PY_ENV};LORAFORGE_GOLDEN_DISPATCH=native"
  PASS_REGULAR_EXPRESSION "STALE .*: train[.]final[.][^ ]+ differs by [0-9.e+-]+ [(]relative to max [|]committed[|][)] > 1e-06")
# the stories260K conversion check can fail
add_test(NAME golden_conversion_check COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/test_convert.py)
set_tests_properties(check_peft_refuses_bad_adapters goldens_not_stale golden_conversion_check
                     PROPERTIES TIMEOUT 300 ENVIRONMENT "${LF_PY_ENV}")

# `generate` and `score` end to end (one process, both variants, batched) = transformers' goldens
file(GLOB LF_GEN_GOLDEN_DIRS LIST_DIRECTORIES true ${CMAKE_CURRENT_LIST_DIR}/../tests/golden/gen-v1/*)
foreach(dir ${LF_GEN_GOLDEN_DIRS})
  if(IS_DIRECTORY ${dir})
    get_filename_component(cfg ${dir} NAME)
    add_test(NAME generate_cli_${cfg} COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/check_gen.py
             --core $<TARGET_FILE:loraforge-core> --golden ${dir})
    set_tests_properties(generate_cli_${cfg} PROPERTIES TIMEOUT 120 ENVIRONMENT "${LF_PY_ENV}")
  endif()
endforeach()
# the committed generation goldens are what make_gen_golden.py writes now
add_test(NAME gen_goldens_not_stale COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/regen_gen_check.py)
set_tests_properties(gen_goldens_not_stale PROPERTIES TIMEOUT 300 ENVIRONMENT "${LF_PY_ENV}")
# the generation goldens are pinned by the same dispatch.py: an environment asking for other kernels
# regenerates the same values
foreach(isa avx2 avx512)
  string(TOUPPER ${isa} ISA)
  add_test(NAME gen_goldens_not_stale_forced_${isa} COMMAND ${LORAFORGE_PYTHON} ${LF_GOLDEN_PY}/regen_gen_check.py)
  set_tests_properties(gen_goldens_not_stale_forced_${isa} PROPERTIES TIMEOUT 300
    ENVIRONMENT "${LF_PY_ENV};ATEN_CPU_CAPABILITY=${isa};MKL_CBWR=AUTO;MKL_ENABLE_INSTRUCTIONS=${ISA};ONEDNN_MAX_CPU_ISA=ALL")
endforeach()
