-- extend(lease_ms, id1, token1, id2, token2, ...) -> {1|0, ...}
-- Heartbeat and pre-call check in one: a lease still held (token matches, lease
-- present) is pushed to now + lease and answers 1; a lost one answers 0.
local lease = tonumber(ARGV[1])
local now = now_ms()
local held = {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if holds(redis.call('HGET', job_key(id), 'token'), token)
      and redis.call('ZSCORE', K.leases, id) then
    redis.call('ZADD', K.leases, now + lease, id)
    held[#held + 1] = 1
  else
    held[#held + 1] = 0
  end
end
return held
