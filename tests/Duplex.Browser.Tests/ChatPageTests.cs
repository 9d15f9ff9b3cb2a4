using Microsoft.Playwright;

namespace Duplex.Browser.Tests;

/// <summary>The chat page served at / by `duplex serve`, used by two people in two pages.</summary>
[Collection("browser")]
public class ChatPageTests(BrowserFixture fixture)
{
    private static async Task JoinAsync(IPage page, string name, string room)
    {
        await page.Locator("#status.connected").WaitForAsync(new() { Timeout = 15_000 });
        await page.FillAsync("#name", name);
        await page.FillAsync("#room", room);
        await page.ClickAsync("#join button");
    }

    // Two pages in one room: one that reads, one that writes.
    private async Task<(IPage Reader, IPage Writer)> ReaderAndWriterAsync(ServeProcess serve, string room)
    {
        var reader = await fixture.Browser.NewPageAsync();
        var writer = await fixture.Browser.NewPageAsync();
        await reader.GotoAsync(serve.HttpUrl.ToString());
        await writer.GotoAsync(serve.HttpUrl.ToString());
        await JoinAsync(reader, "Reader", room);
        await JoinAsync(writer, "Writer", room);
        return (reader, writer);
    }

    private static async Task SayAsync(IPage page, string text)
    {
        await page.FillAsync("#text", text);
        await page.PressAsync("#text", "Enter");
    }

    [Fact]
    public async Task Two_people_in_one_room_see_each_others_messages_and_presence()
    {
        await using var serve = await ServeProcess.StartAsync();
        var ada = await fixture.Browser.NewPageAsync();
        var bob = await fixture.Browser.NewPageAsync();
        try
        {
            await ada.GotoAsync(serve.HttpUrl.ToString());
            await bob.GotoAsync(serve.HttpUrl.ToString());
            await JoinAsync(ada, "Ada", "tea-room");
            await JoinAsync(bob, "Bob", "tea-room");

            // Presence: each sees both names.
            await ada.Locator("#members li", new() { HasText = "Bob" }).WaitForAsync(new() { Timeout = 15_000 });
            await bob.Locator("#members li", new() { HasText = "Ada" }).WaitForAsync(new() { Timeout = 15_000 });

            await SayAsync(ada, "Hello Bob!");
            await bob.Locator("#messages li", new() { HasText = "Hello Bob!" }).WaitForAsync(new() { Timeout = 15_000 });
            await SayAsync(bob, "Hi Ada, tea?");
            await ada.Locator("#messages li", new() { HasText = "Hi Ada, tea?" }).WaitForAsync(new() { Timeout = 15_000 });

            var adaLines = await ada.Locator("#messages li.message").AllInnerTextsAsync();
            Assert.Equal(2, adaLines.Count);
            Assert.StartsWith("Ada", adaLines[0]);
            Assert.StartsWith("Bob", adaLines[1]);
            await ada.ScreenshotAsync(new() { Path = ArtifactPath("chat-two-people.png") });

            // Bob leaves: Ada sees him go.
            await bob.CloseAsync();
            await ada.Locator("#members li", new() { HasText = "Bob" }).WaitForAsync(new() { State = WaitForSelectorState.Detached, Timeout = 15_000 });
        }
        finally
        {
            await ada.CloseAsync();
            if (!bob.IsClosed)
                await bob.CloseAsync();
        }
    }

    [Fact]
    public async Task A_page_that_reconnects_recovers_what_it_missed()
    {
        await using var serve = await ServeProcess.StartAsync();
        var (reader, writer) = await ReaderAndWriterAsync(serve, "news");
        try
        {
            await SayAsync(writer, "first");
            await reader.Locator("#messages li", new() { HasText = "first" }).WaitForAsync(new() { Timeout = 15_000 });

            // Cut the reader's connection from inside the page; it reconnects by itself.
            await reader.EvaluateAsync("() => hub.drop()");
            await SayAsync(writer, "while you were away");
            await reader.Locator("#messages li", new() { HasText = "while you were away" }).WaitForAsync(new() { Timeout = 20_000 });
            await reader.Locator("#status.connected").WaitForAsync(new() { Timeout = 15_000 });
            Assert.Equal(1, await reader.Locator("#messages li", new() { HasText = "first" }).CountAsync()); // recovered, not duplicated
        }
        finally
        {
            await reader.CloseAsync();
            await writer.CloseAsync();
        }
    }

    [Fact]
    public async Task After_the_server_restarts_new_messages_appear_and_the_page_says_history_was_reset()
    {
        // The reported loss: the restarted server's offsets begin at 1 again, and the page took
        // every new message for one it had already shown.
        var serve = await ServeProcess.StartAsync();
        int port = serve.HttpUrl.Port;
        var (reader, writer) = await ReaderAndWriterAsync(serve, "lobby");
        try
        {
            foreach (var text in new[] { "one", "two", "three" })
            {
                await SayAsync(writer, text);
                await reader.Locator("#messages li", new() { HasText = text }).WaitForAsync(new() { Timeout = 15_000 });
            }

            await serve.DisposeAsync();
            serve = await ServeProcess.StartOnPortAsync(port);
            await reader.Locator("#messages li.system", new() { HasText = "history was reset" }).WaitForAsync(new() { Timeout = 30_000 });
            await writer.Locator("#status.connected").WaitForAsync(new() { Timeout = 30_000 });
            foreach (var text in new[] { "after the restart", "and again" })
            {
                await SayAsync(writer, text);
                await reader.Locator("#messages li", new() { HasText = text }).WaitForAsync(new() { Timeout = 15_000 });
            }
            var lines = await reader.Locator("#messages li.message").AllInnerTextsAsync();
            Assert.Equal(5, lines.Count);
            Assert.Contains("after the restart", lines[3]); // after the old ones, not among them
            Assert.Contains("and again", lines[4]);
        }
        finally
        {
            await reader.CloseAsync();
            await writer.CloseAsync();
            await serve.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_message_typed_while_offline_waits_visibly_and_goes_out_when_the_server_is_back()
    {
        var serve = await ServeProcess.StartAsync();
        int port = serve.HttpUrl.Port;
        var (reader, writer) = await ReaderAndWriterAsync(serve, "lobby");
        try
        {
            await writer.Locator("#members li", new() { HasText = "Reader" }).WaitForAsync(new() { Timeout = 15_000 });

            await serve.DisposeAsync();
            await writer.Locator("#status.reconnecting").WaitForAsync(new() { Timeout = 15_000 });
            Assert.Equal(0, await writer.Locator("#members li").CountAsync()); // nobody is known to be here while offline
            await SayAsync(writer, "typed while offline");
            await writer.Locator("#messages li.pending", new() { HasText = "waiting for the connection" }).WaitForAsync(new() { Timeout = 5_000 });
            await writer.Locator("#status", new() { HasText = "1 waiting to send" }).WaitForAsync(new() { Timeout = 5_000 });

            serve = await ServeProcess.StartOnPortAsync(port);
            await reader.Locator("#messages li.message", new() { HasText = "typed while offline" }).WaitForAsync(new() { Timeout = 30_000 });
            await writer.Locator("#messages li.message", new() { HasText = "typed while offline" }).WaitForAsync(new() { Timeout = 30_000 });
            await writer.Locator("#messages li.pending").WaitForAsync(new() { State = WaitForSelectorState.Detached, Timeout = 15_000 });
            Assert.Equal(1, await reader.Locator("#messages li.message", new() { HasText = "typed while offline" }).CountAsync());
            await writer.Locator("#members li", new() { HasText = "Reader" }).WaitForAsync(new() { Timeout = 15_000 }); // presence is back
        }
        finally
        {
            await reader.CloseAsync();
            await writer.CloseAsync();
            await serve.DisposeAsync();
        }
    }

    [Fact]
    public async Task Name_and_room_survive_a_reload_and_joins_and_leaves_are_announced()
    {
        await using var serve = await ServeProcess.StartAsync();
        var ada = await fixture.Browser.NewPageAsync();
        var bob = await fixture.Browser.NewPageAsync();
        try
        {
            await ada.GotoAsync(serve.HttpUrl.ToString());
            await JoinAsync(ada, "Ada", "garden");
            await SayAsync(ada, "before the reload");
            await ada.Locator("#messages li.message", new() { HasText = "before the reload" }).WaitForAsync(new() { Timeout = 15_000 });

            await ada.ReloadAsync();
            await ada.Locator("#title", new() { HasText = "Messages in garden" }).WaitForAsync(new() { Timeout = 15_000 });
            Assert.Equal("Ada", await ada.InputValueAsync("#name"));
            Assert.Equal("garden", await ada.InputValueAsync("#room"));
            await ada.Locator("#messages li.message", new() { HasText = "before the reload" }).WaitForAsync(new() { Timeout = 15_000 }); // from history

            await bob.GotoAsync(serve.HttpUrl.ToString());
            await JoinAsync(bob, "Bob", "garden");
            await ada.Locator("#messages li.presence", new() { HasText = "Bob joined" }).WaitForAsync(new() { Timeout = 15_000 });
            await bob.CloseAsync();
            await ada.Locator("#messages li.presence", new() { HasText = "Bob left" }).WaitForAsync(new() { Timeout = 15_000 });
        }
        finally
        {
            await ada.CloseAsync();
            if (!bob.IsClosed)
                await bob.CloseAsync();
        }
    }

    [Fact]
    public async Task The_hub_module_works_from_a_page_of_another_origin()
    {
        // Any web app can use /duplex-hub.js: the module is served with CORS, and the hub takes
        // pages of other origins when `serve --allow-origin` says so.
        await using var serve = await ServeProcess.StartAsync("--allow-origin", "*");
        var page = await fixture.Browser.NewPageAsync();
        try
        {
            await page.SetContentAsync("<p>another app</p>"); // about:blank: another origin
            long offset = await page.EvaluateAsync<long>(@"async base => {
                const { DuplexHub } = await import(base + 'duplex-hub.js');
                const hub = new DuplexHub(base.replace('http', 'ws') + 'hub');
                const got = new Promise(resolve => hub.addEventListener('message', e => resolve(e.detail)));
                await hub.join('apps', { name: 'elsewhere' });
                const { offset } = await hub.publish('apps', { text: 'hi' });
                const message = await got;
                hub.close();
                return message.data.text === 'hi' ? offset : -1;
            }", serve.HttpUrl.ToString());
            Assert.Equal(1, offset);
        }
        finally
        {
            await page.CloseAsync();
        }
    }

    private static string ArtifactPath(string name)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, name);
    }
}
