# Fixture of the torchvision accuracy test: exports ResNet-18/50 and
# MobileNetV2 and computes their PyTorch eager FP32 outputs on the GPU. Without
# a GPU, or without torch and torchvision, it does nothing and the test skips.
# DIGITS (optional) is python/make_digits.py's folder: the models are then also
# trained on it (the trained-model cases of the test skip without it).
# cmake -DPYTHON=... -DSCRIPT=tests/gpu/torchvision_reference.py -DOUT=dir [-DDIGITS=dir]
#       -P generate_torchvision.cmake
find_program(NVIDIA_SMI nvidia-smi)
if(NOT NVIDIA_SMI)
  message(STATUS "no GPU: the torchvision accuracy test skips, so no reference data is made")
  return()
endif()
execute_process(COMMAND ${PYTHON} -c "import torch, torchvision, numpy"
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 0)
  message(STATUS "${PYTHON} cannot import torch, torchvision and numpy: "
                 "the torchvision accuracy test skips")
  return()
endif()
set(digits_args)
if(DIGITS)
  set(digits_args --digits ${DIGITS})
endif()
execute_process(COMMAND ${PYTHON} ${SCRIPT} ${OUT} ${digits_args} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "making the torchvision reference data in ${OUT} failed")
endif()
