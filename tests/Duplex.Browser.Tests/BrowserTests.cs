using System.Text.Json;
using Duplex.Protocol;
using Duplex.Testing;
using Microsoft.Playwright;

namespace Duplex.Browser.Tests;

/// <summary>Headless Chromium talking to `duplex serve`.</summary>
[Collection("browser")]
public class BrowserTests(BrowserFixture fixture)
{
    private static string ArtifactPath(string name)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "artifacts");
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, name);
    }

    [Fact]
    public async Task The_served_page_echoes_what_a_person_types()
    {
        await using var serve = await ServeProcess.StartAsync();
        var page = await fixture.Browser.NewPageAsync();
        try
        {
            await page.GotoAsync(serve.EchoPageUrl.ToString());
            await page.Locator("#status.open").WaitForAsync(new() { Timeout = 15_000 });
            await page.FillAsync("#text", "hello from a browser ✓");
            await page.PressAsync("#text", "Enter");
            var echoed = page.Locator("#log li.in");
            await echoed.First.WaitForAsync(new() { Timeout = 15_000 });
            Assert.Equal("hello from a browser ✓", await echoed.First.InnerTextAsync());
            await page.ScreenshotAsync(new() { Path = ArtifactPath("echo-page.png") });
        }
        finally
        {
            await page.CloseAsync();
        }
        Assert.Contains("open 127.0.0.1", serve.Log);
    }

    private const string Exchange = """
        async ([url, closeUrl]) => {
          const results = {};
          const open = u => new Promise((resolve, reject) => {
            const ws = new WebSocket(u); ws.binaryType = 'arraybuffer';
            ws.onopen = () => resolve(ws); ws.onerror = () => reject(new Error('could not open ' + u));
          });
          const next = ws => new Promise((resolve, reject) => {
            ws.onmessage = e => resolve(e.data); ws.onclose = e => reject(new Error('closed ' + e.code));
          });
          const ws = await open(url);
          results.extensions = ws.extensions;
          ws.send('hello ✓'); results.text = await next(ws);
          const json = JSON.stringify({ type: 'message', text: 'chat '.repeat(400) });
          ws.send(json); results.jsonSame = (await next(ws)) === json;
          ws.send(new Uint8Array([0, 1, 2, 255]).buffer); results.binary = Array.from(new Uint8Array(await next(ws)));
          const big = new Uint8Array(16 * 1024 * 1024); for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 255;
          ws.send(big.buffer);
          const back = new Uint8Array(await next(ws));
          results.bigSame = back.length === big.length && back.every((b, i) => b === big[i]);
          const longText = 'é'.repeat(500000); ws.send(longText); results.longTextSame = (await next(ws)) === longText;
          results.close = await new Promise(resolve => { ws.onclose = e => resolve({ code: e.code, clean: e.wasClean }); ws.close(4000, 'browser bye'); });
          const closer = await open(closeUrl);
          results.serverClose = await new Promise(resolve => { closer.onclose = e => resolve({ code: e.code, reason: e.reason, clean: e.wasClean }); });
          return results;
        }
        """;

    [Fact]
    public async Task Chromium_exchanges_text_binary_large_messages_and_close_codes()
    {
        await using var serve = await ServeProcess.StartAsync();
        // Another server than the page's: it must allow the page's origin (the default refuses other origins).
        var closerOptions = new Duplex.Server.WebSocketServerOptions();
        closerOptions.AllowedOrigins.Add(serve.HttpUrl.GetLeftPart(UriPartial.Authority));
        await using var closer = await Loopback.StartEchoServerAsync(closerOptions, s =>
            s.Map("/close4001", (ws, _, _) => ws.CloseAsync((CloseStatus)4001, "server bye")));
        var page = await fixture.Browser.NewPageAsync();
        try
        {
            await page.GotoAsync(serve.HttpUrl.ToString());
            var results = await page.EvaluateAsync<JsonElement>(Exchange, new object[] { serve.EchoUrl.ToString(), closer.Url("/close4001").ToString() });
            Assert.Equal("hello ✓", results.GetProperty("text").GetString());
            // duplex serve accepts the permessage-deflate that Chromium always offers.
            Assert.StartsWith("permessage-deflate", results.GetProperty("extensions").GetString());
            Assert.True(results.GetProperty("jsonSame").GetBoolean());
            Assert.Equal([0, 1, 2, 255], results.GetProperty("binary").EnumerateArray().Select(e => e.GetInt32()));
            Assert.True(results.GetProperty("bigSame").GetBoolean());
            Assert.True(results.GetProperty("longTextSame").GetBoolean());
            Assert.Equal(4000, results.GetProperty("close").GetProperty("code").GetInt32());
            Assert.True(results.GetProperty("close").GetProperty("clean").GetBoolean());
            Assert.Equal(4001, results.GetProperty("serverClose").GetProperty("code").GetInt32());
            Assert.Equal("server bye", results.GetProperty("serverClose").GetProperty("reason").GetString());
            Assert.True(results.GetProperty("serverClose").GetProperty("clean").GetBoolean());
        }
        finally
        {
            await page.CloseAsync();
        }
    }

    [Fact]
    public async Task A_page_from_an_origin_not_allowed_is_refused()
    {
        await using var serve = await ServeProcess.StartAsync("--allow-origin", "https://example.com");
        var page = await fixture.Browser.NewPageAsync();
        try
        {
            await page.GotoAsync(serve.HttpUrl.ToString());
            var code = await page.EvaluateAsync<int>("""
                url => new Promise(resolve => { const ws = new WebSocket(url); ws.onopen = () => resolve(-1); ws.onclose = e => resolve(e.code); })
                """, serve.EchoUrl.ToString());
            Assert.Equal(1006, code);
        }
        finally
        {
            await page.CloseAsync();
        }
        Assert.Contains("is not allowed", serve.Log);
    }
}
