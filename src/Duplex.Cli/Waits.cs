namespace Duplex.Cli;

internal static class Waits
{
    /// <summary>Waits <paramref name="time"/>; false when <paramref name="end"/> came first.</summary>
    public static async Task<bool> PauseAsync(TimeSpan time, CancellationToken end)
    {
        try
        {
            await Task.Delay(time, end);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
