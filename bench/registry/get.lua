-- SPDX-License-Identifier: MIT
-- get.lua - plain GET of the URL given to wrk (cairn's /schemas/ids/{id} or
-- the same path served by nginx), with common.lua's status accounting. The
-- same script runs against both servers so their client costs are equal.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")
