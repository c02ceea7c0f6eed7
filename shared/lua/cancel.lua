-- cancel(loginId) -> id of the cancelled job, or -1 if the login has no unfinished job
-- The job's fencing token is deleted: a worker holding it can neither make
-- its next call (begin fails) nor commit.
local login = ARGV[1]
local id = redis.call('GET', active_key(login))
if not id then return -1 end
local now = now_ms()
local job = job_key(id)
if redis.call('EXISTS', job) == 0 then
  -- the hash is gone (evicted, deleted): drop the stale pointer
  redis.call('DEL', active_key(login))
  return -1
end
redis.call('HDEL', job, 'token')
redis.call('HSET', job, 'err_code', 'CANCELLED', 'err_http', '',
  'err_msg', 'cancelled by an operator', 'last', 'cancel')
finish(id, 'cancelled', now)
return id
