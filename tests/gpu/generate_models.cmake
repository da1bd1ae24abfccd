# Fixture of the GPU engine tests: writes the generated models they compile.
# Without a GPU there is nothing to compile them for, so it does nothing.
# cmake -DPYTHON=... -DSCRIPT=python/make_models.py -DOUT=dir -P generate_models.cmake
find_program(NVIDIA_SMI nvidia-smi)
if(NOT NVIDIA_SMI)
  message(STATUS "no GPU: the engine tests skip, so no models are generated")
  return()
endif()
file(MAKE_DIRECTORY ${OUT})
foreach(model resnet18 mobilenetv2 resnet50)
  if(NOT EXISTS ${OUT}/${model}.onnx)
    execute_process(COMMAND ${PYTHON} ${SCRIPT} --model ${model} --classes 1000 --seed 0
                            -o ${OUT}/${model}.onnx RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "generating ${model} failed (needs python3 with onnx and numpy)")
    endif()
  endif()
endforeach()
