"""The Lua scripts that keep the hubs' shared state consistent in Redis.

Each script is one atomic step, so two hubs can never both grant a lease, a fill can never slip
between a waiter's check and its sleep unannounced, and a tag's deletion never races a put.
``ARGV[1]`` is always the fleet's key prefix (``gp2p:{NAMESPACE}:``): keys a script finds by
reading (a holder's set, a tag's generation) are built from it, inside the same hash tag, so
they live in the declared keys' Redis Cluster slot.

A lease is the string ``TOKEN|HOLDER`` (``SET NX PX``); each holder has a set of the entry ids
it holds, and each hub a set of its holders, so a runner's leases go when it disconnects and a
dead hub's go when its heartbeat lapses. Entries are hashes (``v`` envelope, ``f`` fresh until
and ``s`` stored at in ms, ``t`` tag, ``g`` the tag's generation at put time). Deleting a tag
deletes its generation: every entry put under the old one is dead at once, whatever their
number, and an evicted generation key can only cause misses, never stale hits.
"""

from __future__ import annotations

__all__ = ["BEAT", "GET", "LEASE", "NOTE_LIMIT", "PUT", "RELEASE", "RELEASE_HOLDER"]

#: Reads an entry, dead when its tag moved on since it was put. Sets ``v f s t`` (``v`` false
#: when there is no live entry). Expects ``KEYS[1]`` the entry, ``ARGV[1]`` the prefix.
_READ_ENTRY = """
local e = redis.call('HMGET', KEYS[1], 'v', 'f', 's', 't', 'g')
local v, f, s, t = e[1], e[2], e[3], e[4]
if v and t and t ~= '' and redis.call('GET', ARGV[1] .. 'g:' .. t) ~= e[5] then
  v = false
end
if not v then f, s, t = false, false, false end
"""

#: ``release_holder(holder)``: hands on every lease ``holder`` still holds, announcing each.
_RELEASE_HOLDER_FN = """
local function release_holder(prefix, holder, channel)
  local n = 0
  local set = prefix .. 'h:' .. holder
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local key = prefix .. 'l:' .. id
    local lease = redis.call('GET', key)
    if lease and string.sub(lease, string.find(lease, '|', 1, true) + 1) == holder then
      redis.call('DEL', key)
      redis.call('PUBLISH', channel, 'r' .. id)
      n = n + 1
    end
  end
  redis.call('DEL', set)
  return n
end
"""

#: GET: KEYS entry; ARGV prefix. Returns ``{v, f, s, t}`` or nil.
GET = _READ_ENTRY + """
if not v then return false end
return {v, f, s, t}
"""

#: LEASE: KEYS entry, lease, holder set, hub's holder set; ARGV prefix, now (ms), token,
#: holder, lease ttl (ms), id (hex), hub holder set ttl (ms).
#: Returns ``{outcome, v, f, s, t, lease pttl}``; outcome ``hit``, ``granted`` or ``held``.
LEASE = _READ_ENTRY + """
if v and tonumber(f) > tonumber(ARGV[2]) then
  return {'hit', v, f, s, t, 0}
end
if redis.call('SET', KEYS[2], ARGV[3] .. '|' .. ARGV[4], 'NX', 'PX', ARGV[5]) then
  redis.call('SADD', KEYS[3], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  redis.call('SADD', KEYS[4], ARGV[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
  return {'granted', v, f, s, t, 0}
end
return {'held', v, f, s, t, redis.call('PTTL', KEYS[2])}
"""

#: PUT: KEYS entry, lease, tag generation (the entry again when untagged); ARGV prefix,
#: envelope, fresh until (ms), stored at (ms), keep (ms), tag (hex or ''), a new generation,
#: token ('' for none), id (hex), channel. A put with the lease's token, or with none, ends
#: the lease; any put wakes the entry's waiters.
PUT = """
local gen = ''
if ARGV[6] ~= '' then
  gen = redis.call('GET', KEYS[3])
  if not gen then
    gen = ARGV[7]
    redis.call('SET', KEYS[3], gen, 'PX', ARGV[5])
  elseif redis.call('PTTL', KEYS[3]) < tonumber(ARGV[5]) then
    redis.call('PEXPIRE', KEYS[3], ARGV[5])
  end
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'f', ARGV[3], 's', ARGV[4], 't', ARGV[6], 'g', gen)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local lease = redis.call('GET', KEYS[2])
if lease then
  local bar = string.find(lease, '|', 1, true)
  if ARGV[8] == '' or string.sub(lease, 1, bar - 1) == ARGV[8] then
    redis.call('DEL', KEYS[2])
    redis.call('SREM', ARGV[1] .. 'h:' .. string.sub(lease, bar + 1), ARGV[9])
  end
end
redis.call('PUBLISH', ARGV[10], 'f' .. ARGV[9])
return 1
"""

#: RELEASE: KEYS lease; ARGV prefix, token, id (hex), channel. Returns 1 when released.
RELEASE = """
local lease = redis.call('GET', KEYS[1])
if not lease then return 0 end
local bar = string.find(lease, '|', 1, true)
if string.sub(lease, 1, bar - 1) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. 'h:' .. string.sub(lease, bar + 1), ARGV[3])
redis.call('PUBLISH', ARGV[4], 'r' .. ARGV[3])
return 1
"""

#: RELEASE_HOLDER: KEYS holder set, hub's holder set; ARGV prefix, holder, channel.
#: Returns the number of leases handed on.
RELEASE_HOLDER = _RELEASE_HOLDER_FN + """
local n = release_holder(ARGV[1], ARGV[2], ARGV[3])
redis.call('SREM', KEYS[2], ARGV[2])
return n
"""

#: BEAT: KEYS hubs hash, own hub's holder set; ARGV prefix, now (ms), instance, lapses at
#: (ms), channel, holder set ttl (ms). Marks this hub alive, and releases the leases of hubs
#: whose heartbeat lapsed. Returns ``{live hubs, leases released}``.
BEAT = _RELEASE_HOLDER_FN + """
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
local live, released = 0, 0
local hubs = redis.call('HGETALL', KEYS[1])
for i = 1, #hubs, 2 do
  if tonumber(hubs[i + 1]) < tonumber(ARGV[2]) then
    local index = ARGV[1] .. 'i:' .. hubs[i]
    for _, holder in ipairs(redis.call('SMEMBERS', index)) do
      released = released + release_holder(ARGV[1], holder, ARGV[5])
    end
    redis.call('DEL', index)
    redis.call('HDEL', KEYS[1], hubs[i])
  else
    live = live + 1
  end
end
return {live, released}
"""

#: NOTE_LIMIT: KEYS limits hash; ARGV prefix, limit key, until (s), channel, ttl (ms). Keeps
#: the later time; announces a change. Returns 1 when it changed.
NOTE_LIMIT = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
if tonumber(ARGV[3]) <= current then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
redis.call('PUBLISH', ARGV[4], 'L' .. ARGV[3] .. '|' .. ARGV[2])
return 1
"""
