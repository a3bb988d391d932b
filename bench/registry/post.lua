-- SPDX-License-Identifier: MIT
-- post.lua - POSTs the same body (the file named by BENCH_BODY_FILE) to the
-- URL given to wrk, with Confluent's content type: the schema look-up
-- (POST /subjects/{s}) and the compatibility check
-- (POST /compatibility/subjects/{s}/versions). The request is built once.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local path = os.getenv("BENCH_BODY_FILE")
local f = assert(io.open(path, "rb"), "BENCH_BODY_FILE must name a readable file")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/vnd.schemaregistry.v1+json"
