#pragma once
// Test hook: MV_CRASH_AT="name:N" kills the process (SIGKILL) the Nth time crash_point(name)
// is reached, so crash-safety tests can stop a run at exact places. No-op otherwise.
namespace mv {

void crash_point(const char* name);

}  // namespace mv
