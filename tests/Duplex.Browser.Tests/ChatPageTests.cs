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

            await ada.FillAsync("#text", "Hello Bob!");
            await ada.PressAsync("#text", "Enter");
            await bob.Locator("#messages li", new() { HasText = "Hello Bob!" }).WaitForAsync(new() { Timeout = 15_000 });
            await bob.FillAsync("#text", "Hi Ada, tea?");
            await bob.PressAsync("#text", "Enter");
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
        var reader = await fixture.Browser.NewPageAsync();
        var writer = await fixture.Browser.NewPageAsync();
        try
        {
            await reader.GotoAsync(serve.HttpUrl.ToString());
            await writer.GotoAsync(serve.HttpUrl.ToString());
            await JoinAsync(reader, "Reader", "news");
            await JoinAsync(writer, "Writer", "news");
            await writer.FillAsync("#text", "first");
            await writer.PressAsync("#text", "Enter");
            await reader.Locator("#messages li", new() { HasText = "first" }).WaitForAsync(new() { Timeout = 15_000 });

            // Cut the reader's connection from inside the page; it reconnects by itself.
            await reader.EvaluateAsync("() => ws.close()");
            await writer.FillAsync("#text", "while you were away");
            await writer.PressAsync("#text", "Enter");
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
        var reader = await fixture.Browser.NewPageAsync();
        var writer = await fixture.Browser.NewPageAsync();
        try
        {
            await reader.GotoAsync(serve.HttpUrl.ToString());
            await writer.GotoAsync(serve.HttpUrl.ToString());
            await JoinAsync(reader, "Reader", "lobby");
            await JoinAsync(writer, "Writer", "lobby");
            foreach (var text in new[] { "one", "two", "three" })
            {
                await writer.FillAsync("#text", text);
                await writer.PressAsync("#text", "Enter");
                await reader.Locator("#messages li", new() { HasText = text }).WaitForAsync(new() { Timeout = 15_000 });
            }

            await serve.DisposeAsync();
            serve = await ServeProcess.StartOnPortAsync(port);
            await reader.Locator("#messages li.system", new() { HasText = "history was reset" }).WaitForAsync(new() { Timeout = 30_000 });
            await writer.Locator("#status.connected").WaitForAsync(new() { Timeout = 30_000 });
            foreach (var text in new[] { "after the restart", "and again" })
            {
                await writer.FillAsync("#text", text);
                await writer.PressAsync("#text", "Enter");
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

    private static string ArtifactPath(string name)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, name);
    }
}
