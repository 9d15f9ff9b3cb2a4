using Duplex.Hub;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Duplex.AspNetCore.Tests;

public class MapDuplexHubTests
{
    private static HubClientOptions As(string? user, params string[] channels)
    {
        var options = new HubClientOptions();
        if (user is not null)
            options.Connection.Headers.Add(new("X-User", user));
        foreach (var channel in channels)
            options.Connection.Headers.Add(new("X-Channels", channel));
        return options;
    }

    private static Task<TestApp> StartHubAsync(bool requireSignIn, Action<HubOptions>? configure = null) =>
        TestApp.StartAsync(
            builder =>
            {
                HeaderAuthentication.AddTo(builder);
                builder.Services.AddDuplexHub(configure);
            },
            app =>
            {
                app.UseAuthentication();
                app.UseAuthorization();
                var hub = app.MapDuplexHub("/hub");
                if (requireSignIn)
                    hub.RequireAuthorization();
            });

    [Fact]
    public async Task Signed_in_users_join_the_channels_their_claims_allow_and_see_each_others_messages()
    {
        await using var app = await StartHubAsync(requireSignIn: true);
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => HubClient.ConnectAsync(app.WebSocketUri("/hub"), As(null)));
        Assert.Equal(401, refused.StatusCode);

        await using var alice = await HubClient.ConnectAsync(app.WebSocketUri("/hub"), As("alice", "news"));
        await using var bob = await HubClient.ConnectAsync(app.WebSocketUri("/hub"), As("bob"));
        await alice.JoinAsync("news");
        await bob.JoinAsync("news");
        var denied = await Assert.ThrowsAsync<HubException>(() => alice.JoinAsync("secret"));
        Assert.Equal("forbidden", denied.Code);
        await bob.PublishAsync("news", new { text = "hi" });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await alice.ReadAllAsync(timeout.Token).FirstAsync(timeout.Token);
        Assert.Equal("news", received.Channel);
        Assert.Equal("hi", received.Data.GetProperty("text").GetString());
        Assert.Equal(bob.ClientId, received.From);
        // Presence names each member by its ASP.NET Core user.
        var members = await bob.PresenceAsync("news");
        Assert.Equal(["alice", "bob"], members.Select(m => m.Info!.Value.GetProperty("user").GetString()).Order());
    }

    [Fact]
    public async Task Without_asp_net_sign_in_the_hubs_own_tokens_decide_and_a_bad_one_gets_401()
    {
        const string Secret = "a-test-secret-of-at-least-32-bytes!!";
        await using var app = await StartHubAsync(requireSignIn: false, o => o.Authenticate = JwtAuthenticator.Create(Secret));
        var refused = await Assert.ThrowsAsync<WebSocketHandshakeException>(() => HubClient.ConnectAsync(app.WebSocketUri("/hub"), As(null)));
        Assert.Equal(401, refused.StatusCode);
        // A signed-in ASP.NET user needs no token.
        await using var carol = await HubClient.ConnectAsync(app.WebSocketUri("/hub"), As("carol"));
        await carol.JoinAsync("any");
    }

    [Fact]
    public async Task MapDuplexHub_without_AddDuplexHub_says_what_is_missing()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            TestApp.StartAsync(b => b.Services.AddDuplex(), a => a.MapDuplexHub("/hub")));
        Assert.Contains("AddDuplexHub", error.Message, StringComparison.Ordinal);
    }
}
