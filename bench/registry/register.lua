-- SPDX-License-Identifier: MIT
-- register.lua - every request registers a schema never seen before:
-- POST /subjects/bench-<tag>-t<thread>-n<counter>/versions with a record
-- whose name and field name carry the same tag, thread id and counter, so
-- each request is a real (durable) registration of a new id, not a look-up.
-- BENCH_TAG keeps rounds of one run apart.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local tag = os.getenv("BENCH_TAG") or "r"
local n = 0
local headers = {["Content-Type"] = "application/vnd.schemaregistry.v1+json"}

function request()
    n = n + 1
    local name = string.format("%s_t%d_n%d", tag, tid, n)
    local body = string.format(
        '{"schema":"{\\"type\\":\\"record\\",\\"name\\":\\"R_%s\\",\\"namespace\\":\\"bench\\",' ..
        '\\"fields\\":[{\\"name\\":\\"id\\",\\"type\\":\\"long\\"},' ..
        '{\\"name\\":\\"f_%s\\",\\"type\\":\\"string\\"}]}"}', name, name)
    return wrk.format("POST", "/subjects/bench-" .. name .. "/versions", headers, body)
end
