-- cancel(loginId) -> id of the cancelled job, or -1 if the login has no unfinished job
-- The job's fencing token is bumped: a worker holding it can neither make
-- its next call (begin fails) nor commit.
local login = ARGV[1]
local id = redis.call('GET', P .. 'active:' .. login)
if not id then return -1 end
local now = now_ms()
local job = P .. 'job:' .. id
redis.call('HINCRBY', job, 'seq', 1)
redis.call('HSET', job, 'err_code', 'CANCELLED', 'err_http', '',
  'err_msg', 'cancelled by an operator', 'last', 'cancel')
finish(id, 'cancelled', now)
return tonumber(id)
