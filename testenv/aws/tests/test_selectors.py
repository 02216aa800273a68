"""GetParameters says which selector each answer belongs to, as AWS does."""


def test_get_parameters_returns_the_selector_of_each_pinned_name(admin):
    admin.ssm.put_parameter(Name="/pinned", Value="first", Type="String")
    admin.ssm.put_parameter(Name="/pinned", Value="second", Type="String", Overwrite=True)
    admin.ssm.label_parameter_version(Name="/pinned", ParameterVersion=1, Labels=["stable"])
    answer = admin.ssm.get_parameters(Names=["/pinned:1", "/pinned:stable", "/pinned"])
    by_selector = {p.get("Selector"): (p["Version"], p["Value"]) for p in answer["Parameters"]}
    assert by_selector == {":1": (1, "first"), ":stable": (1, "first"), None: (2, "second")}


def test_a_missing_selector_stays_invalid(admin):
    admin.ssm.put_parameter(Name="/pinned", Value="first", Type="String", Overwrite=True)
    answer = admin.ssm.get_parameters(Names=["/pinned:9"])
    assert answer["Parameters"] == [] and answer["InvalidParameters"] == ["/pinned:9"]
