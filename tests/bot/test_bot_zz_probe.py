import pytest, logging

@pytest.mark.asyncio
@pytest.mark.parametrize("name,opts", [("work",{"seconds":float("nan")}),("work",{"seconds":float("inf")}),("work",{"seconds":"abc"}),("work",{"seconds":-1.0}),("work",{"seconds":10**30}),("work",{"seconds":""}),("slashonly",{"times":"abc"}),("slashonly",{"times":2**40}),("slashonly",{"times":""}),("work",{"seconds":1e308})])
async def test_probe(comet, name, opts, caplog):
    caplog.set_level(logging.DEBUG)
    try:
        r = await comet.slash(name, opts)
        print(name, opts, "->", r.content)
    except TimeoutError:
        print(name, opts, "-> TIMEOUT")
        for rec in caplog.records:
            if rec.levelno >= logging.WARNING: print("  LOG", rec.name, rec.getMessage()[:300])
        print([ (r.method, r.route, r.status) for r in list(comet.emulator.requests)[-3:]])
