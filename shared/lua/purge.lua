-- purge(set, older_than_ms, limit, product, offset) -> {removed, kept}
-- Deletes jobs of `set` ('finished': retention; 'dead': dead-letter purge)
-- that finished more than older_than_ms ago, looking at most `limit` of them
-- per call. product ('' for every product) deletes only jobs of that
-- product: the others are kept and counted in `kept`; the caller passes the
-- kept total of its earlier calls as `offset` to step over them.
local set, age, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local only, offset = ARGV[4] or '', tonumber(ARGV[5] or 0) or 0
if set ~= 'finished' and set ~= 'dead' then
  return redis.error_reply('purge: unknown set ' .. tostring(set))
end
local cutoff = now_ms() - age
local ids = redis.call('ZRANGE', K[set], '-inf', cutoff, 'BYSCORE', 'LIMIT', offset, limit)
local removed, kept = 0, 0
for _, id in ipairs(ids) do
  if only ~= '' and redis.call('EXISTS', job_key(id)) == 1
      and product_of(redis.call('HGET', job_key(id), 'product')) ~= only then
    kept = kept + 1
  else
    delete_job(id)
    removed = removed + 1
  end
end
if set == 'finished' and only == '' then
  -- stream entries older than the retention go with their jobs
  redis.call('XTRIM', K.results, 'MINID', '~', cutoff)
  redis.call('XTRIM', K.events, 'MINID', '~', cutoff)
end
return { removed, kept }
