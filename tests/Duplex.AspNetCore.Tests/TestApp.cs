using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Duplex.Testing;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Duplex.AspNetCore.Tests;

/// <summary>A real Kestrel app on a free loopback port, as a user's Program.cs would make it.</summary>
internal sealed class TestApp : IAsyncDisposable
{
    private TestApp(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
    }

    private static readonly Lazy<string> EmptyContentRoot = new(() => Directory.CreateTempSubdirectory("duplex-aspnetcore-tests-").FullName);

    public WebApplication App { get; }

    /// <summary>http(s)://127.0.0.1:port</summary>
    public Uri Address { get; }

    public Uri WebSocketUri(string path) =>
        new($"{(Address.Scheme == "https" ? "wss" : "ws")}://{Address.Authority}{path}");

    public Uri HttpUri(string path) => new(Address, path);

    public static async Task<TestApp> StartAsync(Action<WebApplicationBuilder> configure, Action<WebApplication> map,
        HttpProtocols protocols = HttpProtocols.Http1AndHttp2, bool tls = false)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = EmptyContentRoot.Value, // no appsettings.json: the sample's lands in the test's output
        });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = protocols;
            if (tls)
                listen.UseHttps(TestCertificates.Localhost);
        }));
        configure(builder);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new TestApp(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await App.StopAsync(timeout.Token);
        await App.DisposeAsync();
    }
}

/// <summary>A test's sign-in: the X-User header names the user, X-Role and X-Channels add claims; no header, nobody.</summary>
internal sealed class HeaderAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string Name = "Header";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Request.Headers["X-User"].FirstOrDefault() is not { Length: > 0 } user)
            return Task.FromResult(AuthenticateResult.NoResult());
        var claims = new List<Claim> { new(ClaimTypes.Name, user), new(ClaimTypes.NameIdentifier, user) };
        foreach (var role in Request.Headers["X-Role"])
            claims.Add(new Claim(ClaimTypes.Role, role!));
        foreach (var channel in Request.Headers["X-Channels"])
            claims.Add(new Claim("channels", channel!));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, Name));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, Name)));
    }

    public static void AddTo(WebApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(Name).AddScheme<AuthenticationSchemeOptions, HeaderAuthentication>(Name, null);
        builder.Services.AddAuthorization(o => o.AddPolicy("admins", p => p.RequireRole("admin")));
    }
}
