-- release(id1, token1, id2, token2, ...) -> released
-- Gives back claimed steps that never ran (graceful shutdown): they are due
-- again now, their fencing token deleted (the next claim sets a fresh one),
-- and their claim is not counted against the job (it never ran: it cannot
-- be a poison pill).
local now = now_ms()
local released = 0
for i = 1, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local job = job_key(id)
  if holds(redis.call('HGET', job, 'token'), token) and redis.call('ZREM', K.leases, id) == 1 then
    redis.call('HDEL', job, 'token')
    give_back_claim(job)
    redis.call('ZADD', due_key(id), now, id)
    released = released + 1
  end
end
return released
