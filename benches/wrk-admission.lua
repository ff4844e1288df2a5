-- POST the AdmissionReview in BODY_FILE with a fresh request.uid on every
-- request, as the API server sends them (the uid is never the same twice).
local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = file:read("*a")
file:close()
local before, uid, after = body:match('^(.-"uid"%s*:%s*")([^"]*)(".*)$')
assert(before, "the review has no request uid")
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, before .. string.format("%09d", counter) .. "-" .. uid .. after)
end
