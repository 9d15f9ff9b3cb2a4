using System.Reflection;
using System.Security.Claims;
using Duplex.Hub;
using Duplex.Protocol;
using Duplex.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Duplex.AspNetCore;

/// <summary>Duplex endpoints in ASP.NET Core's routing.</summary>
public static class DuplexEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Accepts WebSocket connections at <paramref name="pattern"/> (HTTP/1.1 Upgrade and HTTP/2
    /// extended CONNECT) and runs <paramref name="handler"/> on each. The result is an ordinary
    /// endpoint: <c>RequireAuthorization</c>, <c>RequireCors</c>, rate limiting and filters on
    /// endpoint metadata apply before the upgrade, and <see cref="HttpContext.User"/> is set for
    /// the handler. A request that is not a WebSocket request gets 426 (405 for a method other
    /// than GET or CONNECT). When the handler returns, a connection it left open is closed with
    /// 1000; when it throws, with 1011 (and the error is logged).
    /// </summary>
    /// <param name="endpoints">The app (or a route group).</param>
    /// <param name="pattern">The route pattern, like "/ws" or "/rooms/{room}".</param>
    /// <param name="handler">Serves one connection; the connection ends when it returns.</param>
    /// <param name="route">Subprotocols, per-endpoint compression and an Authorize hook, as for <see cref="WebSocketServer.Map"/>.</param>
    public static IEndpointConventionBuilder MapDuplex(this IEndpointRouteBuilder endpoints, string pattern, DuplexHandler handler,
        WebSocketRouteOptions? route = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(handler);
        var endpoint = new DuplexEndpoint(endpoints.ServiceProvider, route, handler);
        return endpoints.Map(pattern, endpoint.InvokeAsync).WithDisplayName($"Duplex {pattern}");
    }

    /// <summary>
    /// <see cref="MapDuplex(IEndpointRouteBuilder, string, DuplexHandler, WebSocketRouteOptions?)"/>
    /// with a handler whose parameters are filled in by type, as minimal APIs do: the
    /// <see cref="WebSocketConnection"/>, the <see cref="HttpContext"/>, its
    /// <see cref="ClaimsPrincipal"/> and <see cref="HttpRequest"/>, a <see cref="CancellationToken"/>
    /// (the request's, cancelled when the client goes), and any
    /// service from the request's scope. It returns a <see cref="Task"/>, a <see cref="ValueTask"/> or nothing.
    /// </summary>
    public static IEndpointConventionBuilder MapDuplex(this IEndpointRouteBuilder endpoints, string pattern, Delegate handler,
        WebSocketRouteOptions? route = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return endpoints.MapDuplex(pattern, Bind(handler), route);
    }

    /// <summary>
    /// The Duplex hub (channels, presence, history, recovery) at <paramref name="pattern"/>, served
    /// by the <see cref="MessageHub"/> that <see cref="DuplexServiceCollectionExtensions.AddDuplexHub"/> registered.
    /// Who a client is comes from, in order: <paramref name="identify"/> when given; else
    /// ASP.NET Core's authenticated user (subject from <c>sub</c>, the name identifier or the name;
    /// channels it may join from <c>channels</c> claims, may publish to from <c>publish</c> claims,
    /// every channel when it has no <c>channels</c> claim); else the hub's own
    /// <see cref="HubOptions.Authenticate"/> (HS256 tokens), a failure of which answers 401;
    /// else anonymous, with every channel open. Protect the endpoint with
    /// <c>RequireAuthorization</c> to let only signed-in users in.
    /// </summary>
    public static IEndpointConventionBuilder MapDuplexHub(this IEndpointRouteBuilder endpoints, string pattern,
        Func<HttpContext, HubIdentity?>? identify = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var hub = endpoints.ServiceProvider.GetService<MessageHub>()
            ?? throw new InvalidOperationException("MapDuplexHub needs a hub: call builder.Services.AddDuplexHub() first.");
        const string IdentityKey = nameof(HubIdentity);
        var endpoint = new DuplexEndpoint(endpoints.ServiceProvider, route: null,
            (connection, context) => hub.HandleAsync(connection, (HubIdentity)context.Items[IdentityKey]!))
        {
            Admit = (context, request) =>
            {
                var identity = identify is not null ? identify(context)
                    : IdentityOf(context.User) ?? (hub.Options.Authenticate is { } authenticate ? authenticate(request) : HubIdentity.Anonymous);
                if (identity is null)
                    return new HttpRejection(401, "a valid token is needed", [new("WWW-Authenticate", "Bearer")]);
                context.Items[IdentityKey] = identity;
                return null;
            },
        };
        return endpoints.Map(pattern, endpoint.InvokeAsync).WithDisplayName($"Duplex hub {pattern}");
    }

    /// <summary>A signed-in ASP.NET Core user as a hub identity, or null when nobody is signed in.</summary>
    public static HubIdentity? IdentityOf(ClaimsPrincipal? user)
    {
        if (user?.Identity is not { IsAuthenticated: true } signedIn)
            return null;
        string subject = user.FindFirst("sub")?.Value ?? user.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? signedIn.Name ?? "";
        var join = user.FindAll("channels").Select(c => c.Value).ToList();
        var publish = user.FindAll("publish").Select(c => c.Value).ToList();
        if (join.Count == 0)
            join.Add("*");
        return new HubIdentity(subject, join, publish.Count == 0 ? join : publish);
    }

    // Fills a delegate's parameters by type; checked once, here, so that a handler that cannot be
    // called fails at startup, not at its first connection.
    private static DuplexHandler Bind(Delegate handler)
    {
        var method = handler.Method;
        if (method.ReturnType != typeof(Task) && method.ReturnType != typeof(ValueTask) && method.ReturnType != typeof(void))
            throw new ArgumentException($"A Duplex handler returns Task, ValueTask or nothing, not {method.ReturnType.Name}.", nameof(handler));
        var parameters = method.GetParameters();
        var fillers = new Func<WebSocketConnection, HttpContext, object?>[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
            fillers[i] = FillerFor(parameters[i]);
        return (connection, context) =>
        {
            var arguments = new object?[fillers.Length];
            for (int i = 0; i < fillers.Length; i++)
                arguments[i] = fillers[i](connection, context);
            object? result;
            try
            {
                result = method.Invoke(handler.Target, arguments);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                return Task.FromException(e.InnerException);
            }
            return result switch
            {
                Task task => task,
                ValueTask valueTask => valueTask.AsTask(),
                _ => Task.CompletedTask,
            };
        };
    }

    private static Func<WebSocketConnection, HttpContext, object?> FillerFor(ParameterInfo parameter)
    {
        var type = parameter.ParameterType;
        if (type == typeof(WebSocketConnection))
            return (connection, _) => connection;
        if (type == typeof(HttpContext))
            return (_, context) => context;
        if (type == typeof(ClaimsPrincipal))
            return (_, context) => context.User;
        if (type == typeof(CancellationToken))
            return (_, context) => context.RequestAborted;
        if (type == typeof(HttpRequest))
            return (_, context) => context.Request;
        return (_, context) => context.RequestServices.GetService(type)
            ?? throw new InvalidOperationException($"The Duplex handler's parameter '{parameter.Name}' is a {type.Name}, which no service provides.");
    }
}
