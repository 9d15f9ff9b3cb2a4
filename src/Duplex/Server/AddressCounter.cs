using System.Collections.Concurrent;
using System.Net;

namespace Duplex.Server;

/// <summary>
/// Counts something per remote IP address (handshakes in progress), with a cap. An address's
/// entry exists only while its count is above zero, so the map is bounded by what is in
/// progress, not by how many addresses ever came.
/// </summary>
internal sealed class AddressCounter
{
    private readonly ConcurrentDictionary<IPAddress, int> _counts = new();

    /// <summary>Counts one more for the endpoint's address unless it has <paramref name="limit"/> already.</summary>
    public bool TryEnter(EndPoint? endPoint, int limit)
    {
        if (endPoint is not IPEndPoint { Address: var address })
            return true;
        while (true)
        {
            if (_counts.TryGetValue(address, out int count))
            {
                if (count >= limit)
                    return false;
                if (_counts.TryUpdate(address, count + 1, count))
                    return true;
            }
            else if (_counts.TryAdd(address, 1))
            {
                return true;
            }
        }
    }

    public void Exit(EndPoint? endPoint)
    {
        if (endPoint is not IPEndPoint { Address: var address })
            return;
        while (_counts.TryGetValue(address, out int count))
        {
            if (count <= 1 ? _counts.TryRemove(KeyValuePair.Create(address, count)) : _counts.TryUpdate(address, count - 1, count))
                return;
        }
    }
}
