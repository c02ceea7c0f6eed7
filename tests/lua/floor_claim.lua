-- The floor of a fenced claim (BENCHMARKS.md, issue 14's ninth pass): not
-- flinkq's claim.lua, but the least any claim with its guarantees does per
-- job, when a job is stored as a short header of the fields scripts decide
-- on (state, token, claims, started, not_before, commit_id, login, batch)
-- plus one value only the worker reads and writes (`rec`, the rest).
-- Measured by the hand-run test `redis_cpu_floor_of_a_fenced_claim_and_commit`
-- (tests/tests/group_commit.rs); never loaded by flinkq. The jobs' keys
-- (`job:<id>`, and floor_commit.lua's `batch:<name>`) are its own, built
-- here on the measurement's private server, not flinkq's (keys.rs).
-- KEYS: due_high, due, due_low, leases, deadlines
-- ARGV: n, lease_ms, token_base, authorize_timeout_ms, poll_spacing_ms
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_text = string.format('%d', now)
local lease_until = string.format('%d', now + tonumber(ARGV[2]))
local authorize_by = string.format('%d', now + tonumber(ARGV[4]))
local not_before = string.format('%d', now + tonumber(ARGV[5]))
local TERMINAL = { succeeded = true, failed = true, timed_out = true, cancelled = true }
local out, leases, deadlines, c, d = {}, {}, {}, 0, 0
for q = 1, 3 do
  if c >= n then break end
  local due = redis.call('ZRANGE', KEYS[q], '-inf', now_text, 'BYSCORE', 'LIMIT', '0', n - c)
  if #due > 0 then
    redis.call('ZREM', KEYS[q], unpack(due))
    for i = 1, #due do
      local id = due[i]
      local job = 'job:' .. id
      local v = redis.call('HMGET', job, 'state', 'claims', 'started', 'rec')
      if v[1] and not TERMINAL[v[1]] then
        c = c + 1
        local token = ARGV[3] .. '.' .. c
        local claims = (tonumber(v[2]) or 0) + 1
        if v[3] then
          redis.call('HSET', job, 'token', token, 'claims', claims, 'not_before', not_before)
        else
          redis.call('HSET', job, 'token', token, 'claims', claims, 'not_before', now_text,
            'started', now_text)
          d = d + 1
          deadlines[2 * d - 1] = authorize_by
          deadlines[2 * d] = id
        end
        leases[2 * c - 1] = lease_until
        leases[2 * c] = id
        out[4 * c - 3] = id
        out[4 * c - 2] = token
        out[4 * c - 1] = v[1]
        out[4 * c] = v[4] or ''
      end
    end
  end
end
if c > 0 then redis.call('ZADD', KEYS[4], unpack(leases)) end
if d > 0 then redis.call('ZADD', KEYS[5], 'NX', unpack(deadlines)) end
local next_due = nil
for q = 1, 3 do
  local head = redis.call('ZRANGE', KEYS[q], '0', '0', 'WITHSCORES')
  if head[2] and (not next_due or tonumber(head[2]) < tonumber(next_due)) then
    next_due = head[2]
  end
end
return { now, next_due or '-1', out }
