-- claim(n, lease_ms) -> {now, next_due or -1, {{id, field, value, ...}, ...}}
-- (each job's fields include its due time as the virtual field `due`)
-- Moves at most n due jobs into leases (bounded by LIMIT: never an unbounded
-- range), bumps each job's fencing token, and returns their snapshots plus the
-- earliest due time still waiting, so the claimer can sleep exactly until then.
local n = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local now = now_ms()
local due = redis.call('ZRANGE', P .. 'due', '-inf', now, 'BYSCORE', 'LIMIT', 0, n, 'WITHSCORES')
local claimed = {}
for i = 1, #due, 2 do
  local id, due_at = due[i], due[i + 1]
  redis.call('ZREM', P .. 'due', id)
  local job = P .. 'job:' .. id
  local state = redis.call('HGET', job, 'state')
  if state and not TERMINAL[state] then
    redis.call('HINCRBY', job, 'seq', 1)
    if not redis.call('HGET', job, 'started') then
      redis.call('HSET', job, 'started', now)
    end
    redis.call('ZADD', P .. 'leases', now + lease, id)
    local fields = redis.call('HGETALL', job)
    table.insert(fields, 1, id)
    fields[#fields + 1] = 'due'
    fields[#fields + 1] = due_at
    claimed[#claimed + 1] = fields
  end
end
local next_due = redis.call('ZRANGE', P .. 'due', 0, 0, 'WITHSCORES')
return { now, next_due[2] or '-1', claimed }
