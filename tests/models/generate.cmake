# Runs python/make_model_tests.py with the project venv (ctest fixture of the
# model tests). Invoked as: cmake -DPYTHON=... -DSCRIPT=... -DOUT=... -P generate.cmake
# The venv is checked here, at test time, so that creating it after configuring
# is enough.
if(NOT EXISTS "${PYTHON}")
  message(FATAL_ERROR
    "models: ${PYTHON} not found. The model tests need the project venv "
    "(onnx, onnxruntime, numpy): run scripts/setup.sh, then rerun ctest.")
endif()
# -B: no __pycache__ in the source tree.
execute_process(COMMAND "${PYTHON}" -B "${SCRIPT}" --out "${OUT}" COMMAND_ERROR_IS_FATAL ANY)
