-- purge(set, older_than_ms, limit) -> jobs removed
-- Deletes jobs of `set` ('finished': retention; 'dead': dead-letter purge)
-- that finished more than older_than_ms ago, at most `limit` per call.
local set, age, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if set ~= 'finished' and set ~= 'dead' then
  return redis.error_reply('purge: unknown set ' .. tostring(set))
end
local cutoff = now_ms() - age
local ids = redis.call('ZRANGE', K[set], '-inf', cutoff, 'BYSCORE', 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  delete_job(id)
end
if set == 'finished' then
  -- stream entries older than the retention go with their jobs
  redis.call('XTRIM', K.results, 'MINID', '~', cutoff)
  redis.call('XTRIM', K.events, 'MINID', '~', cutoff)
end
return #ids
