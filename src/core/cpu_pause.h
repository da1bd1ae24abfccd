// A hint to the CPU inside a polling loop: the x86 PAUSE instruction (lets the
// sibling hyperthread run and saves power while spinning), a yield elsewhere.
#pragma once

#include <thread>

namespace anvil {

inline void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace anvil
