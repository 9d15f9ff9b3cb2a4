using Duplex.Hub;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Duplex.AspNetCore;

/// <summary>Registers Duplex with an app's services.</summary>
public static class DuplexServiceCollectionExtensions
{
    /// <summary>The configuration section <see cref="AddDuplex"/> binds <see cref="DuplexOptions"/> from.</summary>
    public const string ConfigurationSection = "Duplex";

    /// <summary>
    /// Adds the options of <c>MapDuplex</c> endpoints: bound from the configuration section
    /// "Duplex" (when the app has an <see cref="IConfiguration"/>), then changed by <paramref name="configure"/>.
    /// </summary>
    public static IServiceCollection AddDuplex(this IServiceCollection services, Action<DuplexOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (!services.Any(d => d.ServiceType == typeof(Registered)))
        {
            services.AddSingleton<Registered>();
            services.AddOptions<DuplexOptions>().Configure<IServiceProvider>((options, provider) =>
            {
                if (provider.GetService<IConfiguration>()?.GetSection(ConfigurationSection) is { } section && section.Exists())
                    section.Bind(options);
            });
        }
        if (configure is not null)
            services.Configure(configure);
        return services;
    }

    // Marks AddDuplex as done: binding the section twice would add its origins to the list twice.
    private sealed class Registered;

    /// <summary>
    /// Adds Duplex and one <see cref="MessageHub"/> (a singleton: every <c>MapDuplexHub</c>
    /// endpoint shares its channels), with the in-memory engine unless an <see cref="IHubEngine"/>
    /// is registered (Duplex.Hub.Redis's, for several nodes). Hub options bind from "Duplex:Hub".
    /// </summary>
    public static IServiceCollection AddDuplexHub(this IServiceCollection services, Action<HubOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddDuplex();
        services.AddOptions<HubOptions>().Configure<IServiceProvider>((options, provider) =>
        {
            if (provider.GetService<IConfiguration>()?.GetSection(ConfigurationSection + ":Hub") is { } section && section.Exists())
                section.Bind(options);
        });
        if (configure is not null)
            services.Configure(configure);
        services.TryAddSingleton(provider => new MessageHub(
            provider.GetRequiredService<Microsoft.Extensions.Options.IOptions<HubOptions>>().Value,
            provider.GetService<IHubEngine>()));
        return services;
    }
}
