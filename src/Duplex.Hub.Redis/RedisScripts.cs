namespace Duplex.Hub.Redis;

/// <summary>
/// The Lua scripts that keep a channel's position and history consistent: each runs atomically
/// in Redis, so offsets are given once across all nodes, and a message is in the stream before
/// it is published to anyone. KEYS[1] is the channel's meta hash (epoch, top), KEYS[2] its stream
/// (one entry per message, id <c>offset-0</c>, fields d = data, f = from, t = time in ms).
/// Times are Redis's (TIME), one clock for every node.
/// </summary>
internal static class RedisScripts
{
    // publish(channel, sharded, payload): SPUBLISH when sharded is '1', else PUBLISH.
    private const string PublishFunction = """

        local function publish(channel, sharded, payload)
          if sharded == '1' then
            redis.call('SPUBLISH', channel, payload)
          else
            redis.call('PUBLISH', channel, payload)
          end
        end

        """;

    // Shared head: the channel's epoch, made (with an empty stream) when it has none.
    private const string EnsureEpoch = """
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then
          epoch = ARGV[1]
          redis.call('DEL', KEYS[2])
          redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
        end
        local now = redis.call('TIME')
        local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        """;

    /// <summary>
    /// ARGV: new epoch, data, from, history size, history age ms, position ttl ms, pub/sub
    /// channel, '1' for SPUBLISH. Returns {epoch, offset, time ms}.
    /// </summary>
    public const string Publish = EnsureEpoch + PublishFunction + """

        local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
        local t = string.format('%d', nowMs)
        if tonumber(ARGV[4]) > 0 then
          redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], string.format('%d-0', offset), 'd', ARGV[2], 'f', ARGV[3], 't', t)
          redis.call('PEXPIRE', KEYS[2], ARGV[5])
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[6])
        publish(ARGV[7], ARGV[8], epoch .. '\n' .. string.format('%d', offset) .. '\n' .. t .. '\n' .. ARGV[3] .. '\n' .. ARGV[2])
        return {epoch, offset, t}
        """;

    /// <summary>
    /// ARGV: new epoch, since, history size, history age ms, position ttl ms, the epoch asked
    /// for ('' for any). Returns {epoch, top} when nothing can (or need) be replayed, else
    /// {epoch, top, entries since+1..top}; a caller counts the entries to know all are there.
    /// </summary>
    public const string Since = EnsureEpoch + """

        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        local top = tonumber(redis.call('HGET', KEYS[1], 'top'))
        local since = tonumber(ARGV[2])
        if (ARGV[6] ~= '' and ARGV[6] ~= epoch) or since < 0 or since >= top or top - since > tonumber(ARGV[3]) then
          return {epoch, top}
        end
        local entries = redis.call('XRANGE', KEYS[2], string.format('%d-0', since + 1), string.format('%d-0', top))
        if #entries > 0 and tonumber(entries[1][2][6]) < nowMs - tonumber(ARGV[4]) then
          return {epoch, top} -- the oldest one asked for has expired
        end
        return {epoch, top, entries}
        """;

    // Presence: KEYS[1] is the channel's member hash (client -> info JSON, '' for none), KEYS[2]
    // a sorted set of the same clients scored by when they expire (ms). Each node pushes its own
    // members' expiry forward; members of a node that died expire, and whoever sweeps them tells
    // every node they left.
    private const string PresenceHead = PublishFunction + """
        local now = redis.call('TIME')
        local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        local function sweep(channel, sharded)
          local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', nowMs)
          for _, client in ipairs(expired) do
            redis.call('HDEL', KEYS[1], client)
            redis.call('ZREM', KEYS[2], client)
            publish(channel, sharded, '!-\n\n' .. client .. '\n')
          end
        end
        """;

    /// <summary>
    /// ARGV: pub/sub channel, '1' for SPUBLISH, member ttl ms, key ttl ms, then pairs of client
    /// and info: (re)records those members as alive, sweeps the expired. With one pair and a
    /// payload in ARGV[5 + 2n] it also publishes the join. Returns nothing.
    /// </summary>
    public const string Present = PresenceHead + """

        sweep(ARGV[1], ARGV[2])
        local pairs = math.floor((#ARGV - 4) / 2)
        for i = 0, pairs - 1 do
          redis.call('HSET', KEYS[1], ARGV[5 + 2 * i], ARGV[6 + 2 * i])
          redis.call('ZADD', KEYS[2], nowMs + tonumber(ARGV[3]), ARGV[5 + 2 * i])
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
        if (#ARGV - 4) % 2 == 1 then
          publish(ARGV[1], ARGV[2], ARGV[#ARGV])
        end
        return 0
        """;

    /// <summary>ARGV: pub/sub channel, '1' for SPUBLISH, client, payload: forgets a member and publishes its leaving.</summary>
    public const string Absent = PresenceHead + """

        redis.call('HDEL', KEYS[1], ARGV[3])
        redis.call('ZREM', KEYS[2], ARGV[3])
        publish(ARGV[1], ARGV[2], ARGV[4])
        return 0
        """;

    /// <summary>ARGV: pub/sub channel, '1' for SPUBLISH. Sweeps the expired, returns the members: client, info, client, info …</summary>
    public const string Members = PresenceHead + """

        sweep(ARGV[1], ARGV[2])
        return redis.call('HGETALL', KEYS[1])
        """;

    /// <summary>
    /// ARGV: limit, last offset wanted (inclusive), history age ms, history size. Returns {} when
    /// the channel has no stream, else {epoch, newest-first entries not expired and among the
    /// newest history-size offsets} (MAXLEN ~ may keep a few more than that).
    /// </summary>
    public const string History = """
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        if not epoch then
          return {}
        end
        local now = redis.call('TIME')
        local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[3])
        -- fewer messages than the history size: from the first (a negative stream id is an error)
        local oldest = math.max(0, tonumber(redis.call('HGET', KEYS[1], 'top')) - tonumber(ARGV[4]))
        local entries = redis.call('XREVRANGE', KEYS[2], ARGV[2], string.format('%d-0', oldest + 1), 'COUNT', ARGV[1])
        local kept = {}
        for _, entry in ipairs(entries) do
          if tonumber(entry[2][6]) >= cutoff then
            kept[#kept + 1] = entry
          end
        end
        return {epoch, kept}
        """;
}
