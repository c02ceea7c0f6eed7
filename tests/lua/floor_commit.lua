-- The floor of a fenced, idempotent group commit (see floor_claim.lua):
-- each commit decided alone in a protected call, fenced by login, token and
-- the lease, recognised when retried (commit_id), its state counters summed
-- over the call, globally and per batch; the job's record written as the
-- one value the worker sent. Never loaded by flinkq.
-- KEYS: due_high, due, due_low, leases, counts
-- ARGV: segments of 7: id, login, token, commit_id, state, due, rec
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local moves, order = {}, {}
local function move(key, field, by)
  local k = key .. '\0' .. field
  if not moves[k] then
    moves[k] = 0
    order[#order + 1] = { key, field, k }
  end
  moves[k] = moves[k] + by
end
local function commit(o)
  local id, login, token, commit_id, state = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local job = 'job:' .. id
  local held = redis.call('HMGET', job, 'login', 'token', 'commit_id', 'state', 'batch')
  if held[3] == commit_id then return 2 end
  if held[1] ~= login then return 0 end
  if token == '' or held[2] ~= token or redis.call('ZREM', KEYS[4], id) == 0 then return 0 end
  if held[4] ~= state then
    redis.call('HSET', job, 'rec', ARGV[o + 7], 'updated', now, 'commit_id', commit_id,
      'token', '', 'claims', '0', 'state', state)
    move(KEYS[5], held[4], -1)
    move(KEYS[5], state, 1)
    move('batch:' .. held[5], held[4], -1)
    move('batch:' .. held[5], state, 1)
  else
    redis.call('HSET', job, 'rec', ARGV[o + 7], 'updated', now, 'commit_id', commit_id,
      'token', '', 'claims', '0')
  end
  redis.call('ZADD', KEYS[2], ARGV[o + 6], id)
  return 1
end
local results = {}
for o = 0, #ARGV - 1, 7 do
  local ok, result = pcall(commit, o)
  results[#results + 1] = ok and result or tostring(result)
end
for _, m in ipairs(order) do
  if moves[m[3]] ~= 0 then redis.call('HINCRBY', m[1], m[2], moves[m[3]]) end
end
return results
