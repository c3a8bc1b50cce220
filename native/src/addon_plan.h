// JS → C++: the parsed plan.json object (codegen's LaunchPlan) into a launch_plan. Part of the addon
// boundary; throws loom_error naming the field that is missing or malformed.
#pragma once

#include <napi.h>

#include "plan.h"

namespace loom {

launch_plan addon_plan_from_js(const Napi::Object& plan);

} // namespace loom
