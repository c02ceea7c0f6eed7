-- cancel(loginId, product) -> id of the cancelled job, or -1 if the login has
-- no unfinished job of that product
-- The job's fencing token is deleted: a worker holding it can neither make
-- its next call (begin fails) nor commit.
local active = active_key(login_record(ARGV[1], ARGV[2]))
local id = redis.call('GET', active)
if not id then return -1 end
local now = now_ms()
local job = job_key(id)
if redis.call('EXISTS', job) == 0 then
  -- the hash is gone (evicted, deleted): drop the stale pointer
  redis.call('DEL', active)
  return -1
end
redis.call('HDEL', job, 'token')
redis.call('HSET', job, 'err_code', 'CANCELLED', 'err_http', '',
  'err_msg', 'cancelled by an operator', 'last', 'cancel')
finish(id, 'cancelled', now)
return id
