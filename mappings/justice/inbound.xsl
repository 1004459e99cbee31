<?xml version="1.0" encoding="UTF-8"?>
<!-- Community corrections SQJZ -> Case Exchange standard v1 (stage execution, one offender p1). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="m">
  <xsl:template match="PJ|TZ">
    <xsl:param name="type"/>
    <Document><Type><xsl:value-of select="$type"/></Type><Number><xsl:value-of select="@WH"/></Number>
      <Date><xsl:value-of select="@RQ"/></Date><Issuer><xsl:value-of select="@DW"/></Issuer></Document>
  </xsl:template>
  <xsl:template match="/SQJZ">
    <CaseRecord>
      <xsl:attribute name="version"><xsl:choose><xsl:when test="XF and DX">1.1</xsl:when><xsl:otherwise>1.0</xsl:otherwise></xsl:choose></xsl:attribute>
      <CaseNumber><xsl:value-of select="AH"/></CaseNumber>
      <Stage>execution</Stage>
      <Action><xsl:value-of select="m:to-standard('actions', @LX)"/></Action>
      <Sender><xsl:value-of select="FS"/></Sender>
      <xsl:for-each select="JS"><Receiver><xsl:value-of select="."/></Receiver></xsl:for-each>
      <xsl:if test="BH"><LocalNumbers><xsl:for-each select="BH"><LocalNumber agency="{@DW}"><xsl:value-of select="."/></LocalNumber></xsl:for-each></LocalNumbers></xsl:if>
      <xsl:for-each select="DX"><Persons><Person id="p1"><Role>offender</Role><Name><xsl:value-of select="XM"/></Name>
        <xsl:if test="SFZH"><ResidentId><xsl:value-of select="SFZH"/></ResidentId></xsl:if>
        <xsl:if test="CSRQ"><BirthDate><xsl:value-of select="CSRQ"/></BirthDate></xsl:if>
        <xsl:if test="XB"><Gender><xsl:value-of select="m:to-standard('genders', XB)"/></Gender></xsl:if>
        <xsl:if test="ZZ"><Address><xsl:value-of select="ZZ"/></Address></xsl:if></Person></Persons></xsl:for-each>
      <xsl:if test="ZM"><Offences><xsl:for-each select="ZM"><Offence><Code><xsl:value-of select="m:to-standard('offences', .)"/></Code>
        <xsl:if test="../DX"><PersonRef>p1</PersonRef></xsl:if></Offence></xsl:for-each></Offences></xsl:if>
      <xsl:for-each select="XF[../DX]"><Sentences><Sentence><PersonRef>p1</PersonRef>
        <Penalty><xsl:value-of select="m:to-standard('penalties', @ZX)"/></Penalty>
        <xsl:if test="@XQ"><TermMonths><xsl:value-of select="@XQ"/></TermMonths></xsl:if>
        <xsl:if test="@HX"><Suspended><xsl:value-of select="@HX"/></Suspended></xsl:if>
        <xsl:if test="@KYQ"><ProbationMonths><xsl:value-of select="@KYQ"/></ProbationMonths></xsl:if>
        <xsl:if test="normalize-space(.)"><Text><xsl:value-of select="."/></Text></xsl:if>
        <xsl:if test="../PJ"><DocumentNumber><xsl:value-of select="../PJ/@WH"/></DocumentNumber></xsl:if>
      </Sentence></Sentences></xsl:for-each>
      <xsl:if test="PJ or TZ"><Documents>
        <xsl:apply-templates select="PJ"><xsl:with-param name="type">judgment</xsl:with-param></xsl:apply-templates>
        <xsl:apply-templates select="TZ"><xsl:with-param name="type">execution-notice</xsl:with-param></xsl:apply-templates>
      </Documents></xsl:if>
    </CaseRecord>
  </xsl:template>
</xsl:stylesheet>
